"""Build the single-file executable with PyInstaller from packaging/comfyui-gateway.spec.

    python build_exe.py [--dist DIR] [--work DIR] [--clean]

The same on Windows, macOS and Linux (build on each for its own executable; PyInstaller does not
cross-compile). Result: dist/comfyui-gateway-<version>[.exe] (and dist/comfyui-gateway.app on macOS).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SPEC = ROOT / "packaging" / "comfyui-gateway.spec"
ICONS = ROOT / "packaging" / "icons"


def version() -> str:
    """gateway.__version__, read without importing the service's dependencies."""
    sys.path.insert(0, str(ROOT))
    from gateway import __version__
    return __version__


def executable_path(dist: Path) -> Path:
    """Where the build puts the executable."""
    suffix = ".exe" if sys.platform.startswith("win") else ""
    return Path(dist) / f"comfyui-gateway-{version()}{suffix}"


def build(dist: Path = ROOT / "dist", work: Path = ROOT / "build", clean: bool = False,
          quiet: bool = False) -> Path:
    """Run PyInstaller on the spec and return the executable's path (raises CalledProcessError on failure)."""
    if not (ICONS / "app.png").is_file():
        subprocess.run([sys.executable, str(ROOT / "packaging" / "make_icons.py")], check=True)
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
               "--distpath", str(dist), "--workpath", str(work), str(SPEC)]
    if clean:
        command.append("--clean")
    subprocess.run(command, check=True, cwd=ROOT, capture_output=quiet)
    path = executable_path(dist)
    if not path.is_file():
        raise FileNotFoundError(f"PyInstaller finished but {path} is missing")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: build and report the executable's path and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller's work folder (build/)")
    parser.add_argument("--clean", action="store_true", help="clear PyInstaller's cache first")
    args = parser.parse_args(argv)
    try:
        import PyInstaller  # noqa: F401 - only checks that it is installed
    except ImportError:
        print("PyInstaller is missing: pip install -r requirements-dev.txt", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        path = build(args.dist, args.work, args.clean)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    size = path.stat().st_size / 1024 / 1024
    print(f"built {path} ({size:.1f} MB) in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
