"""ComfyUI frontends for the simulator: the pinned one in the venv, the newest one in a cache folder.

The venv holds ``comfyui-frontend-package`` 1.27.10 (requirements-dev.txt), the version ComfyUI 0.3.64
requires. One venv cannot hold two versions of a package, so the newest frontend the tests also run
is installed with ``pip install --target`` into ``.cache/frontends/<version>`` of the repository, once;
later runs find it there. ``python -m tests.fake_comfy.frontends`` installs it ahead of a test run.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from .routes_frontend import installed_frontend

log = logging.getLogger(__name__)

PINNED = "1.27.10"
NEWEST = "1.58.1"  # the newest release when this was written; raise it to test a newer editor
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "frontends"


def cached_root(version: str, cache: Path = CACHE) -> Path:
    """Where the static folder of ``version`` is (or will be) in the cache."""
    return cache / version / "comfyui_frontend_package" / "static"


def ensure_frontend(version: str = NEWEST, cache: Path = CACHE) -> Path:
    """The static folder of a frontend version, installing it into the cache first when missing."""
    if version == PINNED and installed_frontend() is not None:
        return installed_frontend()
    root = cached_root(version, cache)
    if (root / "index.html").is_file():
        return root
    target = cache / version
    partial = cache / (version + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # what an interrupted install left
    log.info("installing comfyui-frontend-package %s into %s", version, target)
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                    "--no-deps", "--target", str(partial), f"comfyui-frontend-package=={version}"],
                   check=True)
    partial.rename(target)  # only a complete install is ever found under the version's name
    return root


def available(version: str, cache: Path = CACHE) -> Optional[Path]:
    """The static folder of ``version`` when it is installed, without installing anything."""
    if version == PINNED:
        return installed_frontend()
    root = cached_root(version, cache)
    return root if (root / "index.html").is_file() else None


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure_frontend(sys.argv[1] if len(sys.argv) > 1 else NEWEST))
