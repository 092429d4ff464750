"""Files only the gateway's user can read: the data folder 0700, the database, logs and tokens 0600.

On Windows the modes mean little (the per-user folder is private already); chmod is tried anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create the folder if needed and make it 0700."""
    path.mkdir(parents=True, exist_ok=True)
    _chmod(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create the file (empty) if needed and make it 0600, before anyone writes secrets into it."""
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    _chmod(path, FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write a small file atomically with mode 0600 from its first byte."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    _chmod(path, FILE_MODE)


def open_private(path: str, mode: str = "a", encoding: str | None = "utf-8"):
    """open() for a file that must be 0600 even when it is created now (log files)."""
    flags = os.O_CREAT | os.O_WRONLY | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    _chmod(Path(path), FILE_MODE)
    return os.fdopen(fd, mode, encoding=encoding)


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:
        pass  # a file system without modes
