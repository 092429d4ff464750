"""The editor's per-user data kept in the gateway's store: users, settings and user files.

Answers follow ComfyUI's UserManager and AppSettings (single-user mode: every request is the user
"default"): statuses, text bodies and JSON shapes as ComfyUI sends them, settings kept as the user
file ``comfy.settings.json``. Nothing here lives on a worker, so it survives any worker going away, and
every gateway instance on the same database reads and writes the same rows.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import uuid
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ComfyError
from .paths import normalise, relative

logger = logging.getLogger(__name__)

USER = "default"
SETTINGS_FILE = "comfy.settings.json"
USER_CSS = "user.css"
# Served as downloads, never rendered: a stored HTML or script file must not run on the gateway's origin
# (newer ComfyUI does the same).
ACTIVE_TYPES = ("text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript",
                "application/javascript", "text/css", "image/svg+xml", "text/xml", "application/xml")


@dataclass
class FileAnswer:
    """A stored file as GET /userdata/{file} sends it."""

    body: bytes
    headers: dict


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _info(row: dict, folder: str) -> dict:
    return {"path": relative(row["path"], folder), "size": row["size"], "modified": _ms(row["modified_at"]),
            "created": _ms(row["created_at"])}


def _flag(value: str | None, default: str) -> str:
    return (value if value is not None else default).lower()


class UserData:
    """ComfyUI's user routes over the store; methods raise ComfyError with ComfyUI's answers."""

    def __init__(self, store, max_file_bytes: Callable[[], int]):
        self.store = store
        self.max_file_bytes = max_file_bytes

    # ----- users and settings -------------------------------------------------------------------
    async def users(self) -> dict:
        """GET /users in single-user mode."""
        return {"storage": "server", "migrated": await self.store.editor_has_data(USER)}

    async def add_user(self, body: Any) -> str:
        """POST /users: single-user mode keeps serving "default" but answers as ComfyUI does."""
        name = body.get("username") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise ComfyError(400, {"error": "username not provided"})
        if name == USER:
            raise ComfyError(400, {"error": "Duplicate username."})
        if not name.strip():
            raise ComfyError(400, {"error": "username not provided"})
        return re.sub("[^a-zA-Z0-9-_]+", "-", name.strip()) + "_" + str(uuid.uuid4())

    async def settings(self) -> dict:
        """GET /settings: every setting of the user ({} when none is stored)."""
        row = await self.store.editor_get(USER, SETTINGS_FILE)
        if row is None or row["is_dir"]:
            return {}
        try:
            value = json.loads(bytes(row["content"] or b"{}").decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return {}
        return value if isinstance(value, dict) else {}

    async def setting(self, setting_id: str) -> Any:
        """GET /settings/{id}: the value, or null."""
        return (await self.settings()).get(setting_id)

    async def save_settings(self, changes: Any) -> None:
        """POST /settings (an object merged into the stored one) and POST /settings/{id} ({id: value})."""
        if not isinstance(changes, dict):
            raise ComfyError(400, "the settings must be a JSON object")
        size = len(json.dumps(changes))
        if size > self.max_file_bytes():
            raise ComfyError(413, f"the settings are larger than {self.max_file_bytes()} bytes")
        if await self.store.editor_merge_json(USER, SETTINGS_FILE, changes) is None:
            raise ComfyError(400, INVALID_FILE_TARGET)

    # ----- listings -----------------------------------------------------------------------------------
    async def list_dir(self, query: dict) -> list:
        """GET /userdata?dir=&recurse=&full_info=&split=: the files in a folder."""
        raw = query.get("dir") or ""
        if not raw:
            raise ComfyError(400, "Directory not provided")
        try:
            folder = normalise(raw)
        except ComfyError as exc:
            raise ComfyError(403, "Invalid directory") if exc.status == 403 else exc from None
        if folder:
            row = await self.store.editor_get(USER, folder)
            if row is None:
                raise ComfyError(404, "Directory not found")
            if not row["is_dir"]:
                return []
        elif not await self.store.editor_has_data(USER):
            raise ComfyError(404, "Directory not found")
        recurse = _flag(query.get("recurse"), "") == "true"
        full_info = _flag(query.get("full_info"), "") == "true"
        split = _flag(query.get("split"), "") == "true"
        out: list = []
        for row in await self.store.editor_tree(USER, folder):
            rel = relative(row["path"], folder)
            if row["is_dir"] or (not recurse and "/" in rel):
                continue
            if full_info:
                out.append(_info(row, folder))
            else:
                out.append([rel, *rel.split("/")] if split else rel)
        return out

    async def list_v2(self, raw: str) -> list:
        """GET /v2/userdata?path=: folders then files under path, each with its path from the root."""
        try:
            folder = normalise(raw) if raw else ""
        except ComfyError as exc:
            if exc.status == 403:
                raise ComfyError(400, "Invalid path requested") from None
            raise
        if folder:
            row = await self.store.editor_get(USER, folder)
            if row is None:
                raise ComfyError(404, "Requested path not found")
            if not row["is_dir"]:
                raise ComfyError(400, "Requested path is not a directory")
        out = []
        for row in await self.store.editor_tree(USER, folder):
            name = row["path"].rsplit("/", 1)[-1]
            if row["is_dir"]:
                out.append({"name": name, "path": row["path"], "type": "directory"})
            else:
                out.append({"name": name, "path": row["path"], "type": "file", "size": row["size"],
                            "modified": row["modified_at"]})
        out.sort(key=lambda item: (item["type"] != "directory", item["name"].lower()))
        return out

    # ----- files ----------------------------------------------------------------------------------
    async def read(self, raw: str) -> FileAnswer:
        """GET /userdata/{file}."""
        path = normalise(raw)
        row = await self.store.editor_get(USER, path)
        if row is None or row["is_dir"]:
            raise ComfyError(404, b"")
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path == USER_CSS:
            content_type, disposition = "text/css", "inline"
        else:
            disposition = "attachment"
            if content_type in ACTIVE_TYPES:
                content_type = "application/octet-stream"
        return FileAnswer(bytes(row["content"] or b""), {"Content-Type": content_type,
                                                           "X-Content-Type-Options": "nosniff",
                                                           "Content-Disposition": disposition})

    async def write(self, raw: str, content: bytes, query: dict) -> Any:
        """POST /userdata/{file}?overwrite=&full_info=: the stored path, or its info."""
        path = normalise(raw)
        if not path:
            raise ComfyError(400, INVALID_FILE_TARGET)
        limit = self.max_file_bytes()
        if len(content) > limit:
            raise ComfyError(413, f"the file is larger than the gateway keeps ({limit} bytes; "
                                  "GATEWAY_EDITOR_FILE_LIMIT_MB)")
        overwrite = _flag(query.get("overwrite"), "true") != "false"
        outcome, info = await self.store.editor_put(USER, path, content, overwrite)
        return self._moved_or_written(outcome, info, query)

    async def delete(self, raw: str) -> None:
        """DELETE /userdata/{file}."""
        outcome = await self.store.editor_delete(USER, normalise(raw))
        if outcome == "missing":
            raise ComfyError(404, b"")
        if outcome == "is_dir":
            raise ComfyError(400, "a folder cannot be deleted; delete the files in it")

    async def move(self, raw_source: str, raw_dest: str, query: dict) -> Any:
        """POST /userdata/{file}/move/{dest}?overwrite=&full_info=."""
        source, dest = normalise(raw_source), normalise(raw_dest)
        if not source or not dest:
            raise ComfyError(400, INVALID_FILE_TARGET)
        overwrite = _flag(query.get("overwrite"), "true") != "false"
        outcome, info = await self.store.editor_move(USER, source, dest, overwrite)
        if outcome == "missing":
            raise ComfyError(404, b"")
        if outcome == "into_itself":
            raise ComfyError(400, "a folder cannot be moved into itself")
        return self._moved_or_written(outcome, info, query)

    @staticmethod
    def _moved_or_written(outcome: str, info: dict | None, query: dict) -> Any:
        if outcome == "exists":
            raise ComfyError(409, "File already exists")
        if outcome in ("is_dir", "blocked"):
            raise ComfyError(400, INVALID_FILE_TARGET)
        if _flag(query.get("full_info"), "false") == "true":
            return _info(info, "")
        return info["path"]


INVALID_FILE_TARGET = "Invalid filename: a folder, or a file used as a folder, is in the way"
