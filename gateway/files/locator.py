"""Finding the file a GET /view asks for: on the gateway (uploads) or on the worker that holds it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import ComfyError, GatewayError

logger = logging.getLogger(__name__)

VIEW_TYPES = ("output", "input", "temp")


@dataclass
class ViewRequest:
    """A checked /view query."""

    filename: str
    subfolder: str
    type: str
    query: dict  # forwarded to the worker as given (preview, channel, ...)


@dataclass
class FileLocation:
    """Where a file is: a local path, or a worker."""

    path: Path | None = None
    worker: object = None
    from_index: bool = False  # found in the gateway's own records, which may be out of date


def parse_view_query(args: dict) -> ViewRequest:
    """Check /view's query the way ComfyUI does (400 bad name or type, 403 escaping subfolder)."""
    filename = args.get("filename", "")
    if not filename:
        raise ComfyError(404, b"")
    file_type = args.get("type") or "output"
    for suffix in ("output", "input", "temp"):
        if filename.endswith(f" [{suffix}]"):
            filename, file_type = filename[: -len(suffix) - 3], suffix
    if not filename or filename.startswith("/") or ".." in filename:
        raise ComfyError(400, b"")
    if file_type not in VIEW_TYPES:
        raise ComfyError(400, b"")
    subfolder = args.get("subfolder", "") or ""
    parts = PurePosixPath(subfolder.replace("\\", "/")).parts
    if ".." in parts or subfolder.startswith("/"):
        raise ComfyError(403, b"")
    query = {k: v for k, v in args.items() if k not in ("prompt_id", "api_key")}  # the key stays here
    return ViewRequest(PurePosixPath(filename).name, subfolder, file_type, query)


class FileLocator:
    """Looks a file up: the job named by prompt_id, gateway uploads, the output index, then every worker."""

    def __init__(self, gateway):
        self.gw = gateway

    async def locate(self, view: ViewRequest, prompt_id: str | None) -> FileLocation | None:
        """The place to serve the file from, or None (404)."""
        gw = self.gw
        if prompt_id:
            job = await gw.jobs.find(prompt_id)
            worker = gw.registry.get(job.worker_id) if job and job.worker_id is not None else None
            if worker is not None:
                return FileLocation(worker=worker)
        if view.type == "input" and not set(view.query) - {"filename", "subfolder", "type"}:
            path = await gw.uploads.local_path("input", view.subfolder.strip("/"), view.filename)
            if path is not None:
                return FileLocation(path=path)
        hit = await gw.outputs.locate(view.filename, view.subfolder, view.type)
        if hit:
            worker = gw.registry.get(hit[0]) if hit[0] is not None else None
            if worker is not None and worker.status == "online":
                return FileLocation(worker=worker, from_index=True)
        worker = await self.ask_workers(view)
        return FileLocation(worker=worker) if worker else None

    async def relocate(self, view: ViewRequest, stale_worker) -> FileLocation | None:
        """The file was not where the records said: forget that and ask the other workers."""
        self.gw.outputs.forget(view.filename, view.subfolder, view.type)
        worker = await self.ask_workers(view, exclude=stale_worker)
        return FileLocation(worker=worker) if worker else None

    async def ask_workers(self, view: ViewRequest, exclude=None):
        """The first online worker that has the file (asked all at once), remembered for next time."""
        online = [w for w in self.gw.registry.all() if w.status == "online" and w is not exclude]
        query = {"filename": view.filename, "subfolder": view.subfolder, "type": view.type}

        async def has_file(worker) -> bool:
            try:
                response = await worker.client.request("HEAD", "/view", query=query, timeout=5.0)
                return response.status == 200
            except GatewayError:
                return False

        results = await asyncio.gather(*(has_file(w) for w in online))
        for worker, found in zip(online, results):
            if found:
                # Clients ask for the same file again (thumbnails, retries, ranges): the next request
                # goes straight to this worker instead of asking every worker again.
                self.gw.outputs.remember(view.filename, view.subfolder, view.type, worker.id)
                return worker
        return None
