"""Uploads: files clients upload to the gateway, kept by content hash and copied to workers on demand."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Callable

from ..errors import BadRequest, ComfyError, WorkerBadAnswer
from .worker_names import rewrite_inputs, worker_subfolder

logger = logging.getLogger(__name__)

UPLOAD_TYPES = ("input", "temp", "output")


def split_name(name: str) -> tuple[str, str]:
    """('sub', 'file.png') from 'sub/file.png', with a ' [input]'-style annotation removed."""
    for suffix in (" [input]", " [output]", " [temp]"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    path = PurePosixPath(name)
    return (str(path.parent) if str(path.parent) != "." else ""), path.name


def check_subfolder(subfolder: str) -> str:
    """A safe relative subfolder, or ComfyError 400 (empty body) like ComfyUI for one that escapes."""
    sub = (subfolder or "").replace("\\", "/").strip("/")
    parts = PurePosixPath(sub).parts
    if any(part in ("..",) for part in parts) or sub.startswith("/") or os.path.isabs(subfolder or ""):
        raise ComfyError(400, b"")
    return sub


class UploadService:
    """Stores uploads under data_dir/uploads/<sha256> with a (type, subfolder, name) index."""

    def __init__(self, store, data_dir: Path):
        self.store = store
        self.blob_dir = data_dir / "uploads"
        self._index: dict[tuple[str, str, str], str] = {}  # (type, subfolder, name) -> sha256
        self._placed: dict[int, dict[tuple[str, str], str]] = {}  # worker -> (subfolder, name) -> sha
        self._locks: dict[int, asyncio.Lock] = {}
        self._known: frozenset[str] | None = None  # known_names(), until the index changes
        # Several instances (MySQL): the bytes are also kept in the store, so an upload any instance
        # acknowledged reaches the one that sends the job, even if the first one is gone.
        self.shared = False
        self.on_saved: Callable[[], None] | None = None  # told after each stored upload (other instances)
        self._last_id = 0

    async def load(self) -> None:
        """Read the upload index from the store."""
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.blob_dir.glob("*.part"):  # a transfer cut off by a stop
            stale.unlink(missing_ok=True)
        self.add_rows(await self.store.list_uploads())

    async def refresh(self) -> None:
        """Read the uploads other instances stored since the last look."""
        self.add_rows(await self.store.uploads_since(self._last_id))

    def add_rows(self, rows: list[dict]) -> None:
        """Take stored upload rows into the index (in id order: a later row of a name wins)."""
        for row in sorted(rows, key=lambda r: r["id"]):
            if row["id"] > self._last_id:
                self._last_id = row["id"]
                self._set((row["type"], row["subfolder"], row["name"]), row["sha256"])

    async def local_path(self, upload_type: str, subfolder: str, name: str) -> Path | None:
        """The file the gateway keeps for an upload, fetched from the store when another instance took it."""
        sha = self._index.get((upload_type, subfolder, name))
        return await self.ensure_local(sha) if sha else None

    async def ensure_local(self, sha: str) -> Path | None:
        """The blob of a hash on this instance's disk (copied from the store when shared), or None."""
        path = self.blob_dir / sha
        if path.exists() or not self.shared:
            return path if path.exists() else None
        tmp = path.with_name(f"{sha}.{uuid.uuid4().hex}.part")
        try:
            found = await self.store.export_upload_blob(sha, tmp)
            if found:
                os.replace(tmp, path)
                return path
        finally:
            if tmp.exists():
                tmp.unlink()
        return None

    def _set(self, key: tuple[str, str, str], sha: str | None) -> None:
        """Change the index (None removes an entry); every change goes through here."""
        if sha is None:
            self._index.pop(key, None)
        else:
            self._index[key] = sha
        self._known = None

    def known_names(self) -> frozenset[str]:
        """Input file names a workflow may use that the gateway can supply ('name' or 'sub/name').

        Asked on every submission: built once per change of the index, not per call.
        """
        if self._known is None:
            self._known = frozenset(f"{sub}/{name}" if sub else name
                                    for (kind, sub, name) in self._index if kind == "input")
        return self._known

    async def save(self, data: bytes, filename: str, upload_type: str, subfolder: str, overwrite: bool) -> dict:
        """Store an upload held in memory (a merged mask) with ComfyUI's rename rules."""
        sha = await asyncio.get_running_loop().run_in_executor(None, _sha256, data)  # not on the event loop
        return await self._keep(filename, upload_type, subfolder, overwrite, sha, len(data),
                                lambda: _write_unless_present(self.blob_dir / sha, data))

    async def save_file(self, path: Path, sha: str, size: int, filename: str, upload_type: str, subfolder: str,
                        overwrite: bool) -> dict:
        """Store an upload received into a temporary file (moved, never read again) with ComfyUI's rules."""
        return await self._keep(filename, upload_type, subfolder, overwrite, sha, size,
                                lambda: _move_unless_present(path, self.blob_dir / sha))

    def incoming_dir(self) -> Path:
        """Where uploads arrive before they are stored (same file system as the blobs: moved, not copied)."""
        return self.blob_dir

    async def _keep(self, filename: str, upload_type: str, subfolder: str, overwrite: bool, sha: str, size: int,
                    put_blob) -> dict:
        """Name the upload, put its bytes in place (put_blob runs on a thread) and record it."""
        if upload_type not in UPLOAD_TYPES:
            raise BadRequest(f"field 'type' must be one of {', '.join(UPLOAD_TYPES)}", extra={"field": "type"})
        sub = check_subfolder(subfolder)
        name = PurePosixPath(filename.replace("\\", "/")).name
        if not name or name in (".", ".."):
            raise ComfyError(400, b"")
        if self.shared:
            await self.refresh()  # names other instances took meanwhile count for the rename rules
        name = self._final_name(upload_type, sub, name, sha, overwrite)
        key = (upload_type, sub, name)
        previous = self._index.get(key)
        # Claim the name before any await, so a concurrent upload of other bytes gets "stem (1).ext".
        self._set(key, sha)
        try:
            await asyncio.get_running_loop().run_in_executor(None, put_blob)
            if self.shared:  # read from the file part by part: the bytes are never whole in memory
                await self.store.put_upload_blob(sha, self.blob_dir / sha)  # before the answer: durable
            if previous != sha:
                await self.store.add_upload({"sha256": sha, "type": upload_type, "subfolder": sub, "name": name,
                                             "size": size, "created_at": time.time()})
        except BaseException:
            self._set(key, previous)
            raise
        if self.on_saved is not None:
            self.on_saved()
        logger.info("upload %s/%s stored (%d bytes)", sub or ".", name, size)
        return {"name": name, "subfolder": subfolder or "", "type": upload_type}

    def _final_name(self, upload_type: str, sub: str, name: str, sha: str, overwrite: bool) -> str:
        existing = self._index.get((upload_type, sub, name))
        if overwrite or existing is None or existing == sha:
            return name
        stem, ext = os.path.splitext(name)
        counter = 1
        while True:
            candidate = f"{stem} ({counter}){ext}"
            other = self._index.get((upload_type, sub, candidate))
            if other is None or other == sha:
                return candidate
            counter += 1

    def files_for(self, prompt: dict) -> list[tuple[str, str, str]]:
        """(subfolder, name, sha) of every gateway-held input file a workflow names."""
        wanted = []
        for node in prompt.values():
            for value in (node.get("inputs") or {}).values() if isinstance(node, dict) else ():
                if isinstance(value, str):
                    sub, name = split_name(value)
                    sha = self._index.get(("input", sub, name))
                    if sha:
                        wanted.append((sub, name, sha))
        return wanted

    def _input_upload(self, value: str) -> tuple[str, str] | None:
        """(name, sha) when an input value names an uploaded input file."""
        sub, name = split_name(value)
        sha = self._index.get(("input", sub, name))
        return (name, sha) if sha else None

    def for_worker(self, prompt: dict) -> dict:
        """The prompt as a worker gets it: loader values point into the gateway's namespace there."""
        return rewrite_inputs(prompt, self._input_upload)

    async def ensure_on_worker(self, job, worker) -> None:
        """Copy the job's uploaded inputs to the worker unless it already has the same bytes."""
        files = self.files_for(job.prompt)
        if not files:
            return
        lock = self._locks.setdefault(worker.id, asyncio.Lock())
        async with lock:
            placed = self._placed.setdefault(worker.id, {})
            for _, name, sha in files:
                if placed.get((worker_subfolder(sha), name)) == sha:
                    continue
                await self._push(worker, worker_subfolder(sha), name, sha)
                placed[(worker_subfolder(sha), name)] = sha

    def forget_worker(self, worker_id: int) -> None:
        """After a worker restart its files may be gone: upload again next time."""
        self._placed.pop(worker_id, None)

    async def _push(self, worker, sub: str, name: str, sha: str) -> None:
        path = await self.ensure_local(sha)
        if path is None:
            raise WorkerBadAnswer(f"upload {name} is not available on this gateway instance or in the store")
        data = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
        boundary = uuid.uuid4().hex
        # Into the gateway's own namespace on the worker (see worker_names): overwriting there replaces
        # only bytes with the same hash, never a file of the worker's own.
        body = _multipart(boundary, {"type": "input", "subfolder": sub, "overwrite": "true"}, "image", name, data)
        response = await worker.client.request(
            "POST", "/upload/image", body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if response.status != 200:
            raise WorkerBadAnswer(f"worker {worker.name} refused upload {name}: {response.status}")
        logger.info("copied upload %s to %s (%s)", name, worker.name, sub)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_unless_present(path: Path, data: bytes) -> None:
    """Write a blob (atomically) unless the same content is stored already."""
    if path.exists():
        return
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")  # two uploads of one file may race
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _move_unless_present(source: Path, path: Path) -> None:
    """Move a received file into place, unless the same content is stored already (then drop it)."""
    if path.exists():
        source.unlink(missing_ok=True)
        return
    os.replace(source, path)


def _multipart(boundary: str, fields: dict, file_field: str, filename: str, data: bytes) -> bytes:
    parts = []
    for key, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    quoted = filename.replace('"', "%22")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{quoted}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)
