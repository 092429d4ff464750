"""Draw the tray and application icons into packaging/icons/ (run once; the PNGs are committed).

    python packaging/make_icons.py

One node fanning out to three workers, on a rounded square whose colour tells the state:
green = running, amber = paused, grey = no worker online. app.png (256 px) is the executable's icon;
PyInstaller turns it into .ico / .icns.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = Path(__file__).resolve().parent / "icons"
COLOURS = {"running": (46, 160, 67), "paused": (219, 154, 4), "offline": (128, 128, 128)}


def draw(colour: tuple[int, int, int], size: int, paused: bool = False) -> Image.Image:
    """One icon, drawn at 4x and scaled down for smooth edges."""
    big = size * 4
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    unit = big / 64
    pen.rounded_rectangle((2 * unit, 2 * unit, 62 * unit, 62 * unit), radius=12 * unit, fill=colour + (255,))
    white = (255, 255, 255, 255)
    hub, workers = (17 * unit, 32 * unit), [(47 * unit, y * unit) for y in (15, 32, 49)]
    for x, y in workers:
        pen.line((hub, (x, y)), fill=white, width=int(4 * unit))
    for x, y in [hub, *workers]:
        r = (7 if (x, y) == hub else 6) * unit
        pen.ellipse((x - r, y - r, x + r, y + r), fill=white)
    if paused:  # two bars on the hub, so the state reads without colour too
        for x0 in (13.5, 18.5):
            pen.rectangle((x0 * unit, 28 * unit, (x0 + 2.5) * unit, 36 * unit), fill=colour + (255,))
    return image.resize((size, size), Image.LANCZOS)


def main() -> None:
    """Write running/paused/offline.png (64 px) and app.png (256 px)."""
    ICONS.mkdir(parents=True, exist_ok=True)
    for state, colour in COLOURS.items():
        draw(colour, 64, paused=state == "paused").save(ICONS / f"{state}.png", optimize=True)
    draw(COLOURS["running"], 256).save(ICONS / "app.png", optimize=True)
    print(f"icons written to {ICONS}")


if __name__ == "__main__":
    main()
