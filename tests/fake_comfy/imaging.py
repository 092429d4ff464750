"""Image values flowing through fake workflows, and real PNG files made from them.

An IMAGE is an :class:`Img`: the logical size ComfyUI would have (which may be
huge, e.g. 3000x3000) plus a small Pillow proxy picture used for the actual
pixels.  Saved files use the logical size when it is at most ``MAX_SAVE_PIXELS``
and a proportionally reduced size otherwise, so files stay small and fast.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import re
import string
from pathlib import Path
from typing import Optional

from PIL import Image, ImageFilter, ImageOps, PngImagePlugin

PROXY_SIDE = 128
MAX_SAVE_PIXELS = 1024 * 1024


@dataclasses.dataclass
class Img:
    """A batch of images: logical size + a small RGB proxy picture."""

    width: int
    height: int
    batch: int
    proxy: Image.Image

    @classmethod
    def solid(cls, width: int, height: int, batch: int, color: int) -> "Img":
        rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
        return cls(width, height, batch, Image.new("RGB", _proxy_size(width, height), rgb))

    @classmethod
    def from_pil(cls, pil: Image.Image) -> "Img":
        width, height = pil.size
        proxy = pil.convert("RGB").resize(_proxy_size(width, height))
        return cls(width, height, 1, proxy)

    def derive(self, width=None, height=None, proxy=None) -> "Img":
        width = self.width if width is None else max(1, int(width))
        height = self.height if height is None else max(1, int(height))
        proxy = self.proxy if proxy is None else proxy
        if proxy.size != _proxy_size(width, height):
            proxy = proxy.resize(_proxy_size(width, height))
        return Img(width, height, self.batch, proxy)

    def inverted(self) -> "Img":
        return self.derive(proxy=ImageOps.invert(self.proxy))

    def blurred(self, radius: int) -> "Img":
        return self.derive(proxy=self.proxy.filter(ImageFilter.GaussianBlur(max(0, radius) / 4)))

    def padded(self, left, top, right, bottom) -> "Img":
        return self.derive(width=self.width + left + right, height=self.height + top + bottom)

    def cropped(self, width, height, x, y) -> "Img":
        return self.derive(width=min(width, max(1, self.width - x)),
                           height=min(height, max(1, self.height - y)))

    def render(self) -> Image.Image:
        """Full picture to save (logical size, or reduced when very large)."""
        return self.proxy.resize(save_size(self.width, self.height), Image.NEAREST)


def _proxy_size(width: int, height: int):
    scale = min(1.0, PROXY_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def save_size(width: int, height: int):
    """Pixel size of a saved file for a logical image size."""
    pixels = width * height
    if pixels <= MAX_SAVE_PIXELS:
        return width, height
    scale = (MAX_SAVE_PIXELS / pixels) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))


def png_bytes(pil: Image.Image, compress_level: int = 1) -> bytes:
    """Encode a Pillow image as PNG."""
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_png(path: Path, pil: Image.Image, prompt=None, extra_pnginfo=None) -> None:
    """Write a PNG with ComfyUI-style text chunks (``prompt`` and extra_pnginfo keys)."""
    info = PngImagePlugin.PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(str(key), json.dumps(value))
    path.parent.mkdir(parents=True, exist_ok=True)
    pil.save(path, format="PNG", pnginfo=info, compress_level=4)


def next_counter(folder: Path, stem: str) -> int:
    """Next free 5-digit counter for ``<stem>_NNNNN_.png`` in ``folder`` (continues existing files)."""
    pattern = re.compile(re.escape(stem) + r"_(\d+)_?\.")
    best = 0
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 1
    for name in names:
        m = pattern.match(name)
        if m:
            best = max(best, int(m.group(1)))
    return best + 1


def split_prefix(prefix: str):
    """Split a filename_prefix into (subfolder, stem) like ComfyUI (``a/b/c`` -> ``a/b``, ``c``)."""
    prefix = prefix.replace("\\", "/")
    sub, _, stem = prefix.rpartition("/")
    return sub, stem


def temp_prefix() -> str:
    """``ComfyUI_temp_<5 random letters>`` as used by PreviewImage."""
    return "ComfyUI_temp_" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))


def load_image(path: Path) -> Optional[Img]:
    """Decode an image file (raises PIL errors for garbage, like ComfyUI's LoadImage)."""
    with Image.open(path) as pil:
        pil.load()
        return Img.from_pil(pil)
