"""User-data paths as ComfyUI checks them, for a store instead of a folder.

ComfyUI joins the requested name onto the user's folder and refuses what leaves it (403). The store
has no folder to escape from, so the same rule is applied to the name itself: it is decoded once more
when it still holds a "%" (as ComfyUI does), "." and ".." are resolved, and a name that starts with
"/" or climbs above the root is refused with 403. Names the store cannot keep faithfully (backslashes,
control characters, over-long) get ComfyUI's 400 for a name the file system refused.
"""

from __future__ import annotations

from urllib.parse import unquote

from ..errors import ComfyError

MAX_PATH = 512  # the path column
MAX_SEGMENT = 255  # what common file systems allow per name
INVALID_NAME = "Invalid filename. Please avoid special characters like :\\/*?\"<>|"


def normalise(raw: str | None, *, empty_status: int = 400, escape_status: int = 403) -> str:
    """The stored form of a requested user-data path ("" is the user's root); ComfyError when refused."""
    if raw is None or raw == "":
        raise ComfyError(empty_status, b"")
    if "%" in raw:
        raw = unquote(raw)
    if raw.startswith("/"):
        raise ComfyError(escape_status, b"")
    if "\\" in raw or any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise ComfyError(400, INVALID_NAME)
    parts: list[str] = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ComfyError(escape_status, b"")
            parts.pop()
            continue
        if len(part) > MAX_SEGMENT:
            raise ComfyError(400, INVALID_NAME)
        parts.append(part)
    path = "/".join(parts)
    if len(path) > MAX_PATH:
        raise ComfyError(400, INVALID_NAME)
    return path


def relative(path: str, folder: str) -> str:
    """path relative to folder (both normalised; path lies inside folder)."""
    return path[len(folder) + 1:] if folder else path
