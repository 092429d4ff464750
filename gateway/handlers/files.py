"""GET /view (streamed from the worker that holds the file) and POST /upload/image|mask."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os

from tornado import httputil

from ..errors import BadRequest, ComfyError, GatewayError, PayloadTooLarge
from ..files.incoming import BadForm, IncomingUpload
from ..files.locator import FileLocator, parse_view_query
from ..files.masks import apply_mask
from ..workers import connections as worker_connections
from ..workers import zero_copy
from . import guard
from .base import ComfyHandler, dual

logger = logging.getLogger(__name__)

PASSED_HEADERS = ("Content-Type", "Content-Length", "Content-Range", "Content-Disposition", "Accept-Ranges",
                  "ETag", "Last-Modified", "Cache-Control", "X-Content-Type-Options", "Vary")
FORWARDED_REQUEST_HEADERS = ("Range", "If-None-Match", "If-Modified-Since", "If-Range")
CHUNK = 1024 * 1024  # local files are read and sent in steps of this size
BACKLOG = 4 * 1024 * 1024  # most bytes of one download waiting in memory while the client catches up
SPLICE_MIN_BYTES = 1024 * 1024  # from a worker, bodies this big or bigger are spliced (see zero_copy)
RECEIVE_STEP = 1024 * 1024  # an upload's bytes go to its file (parsed, hashed, written) in pieces this big


class StreamingHandler(ComfyHandler):
    """Relays a body to the client while it is read elsewhere, holding at most BACKLOG bytes."""

    _in_flight = None  # the flush being written to the client
    _unflushed = 0  # bytes written since that flush started

    async def _relay(self, chunk: bytes) -> None:
        """Pass a chunk on: keep reading while the socket writes, but never hold more than BACKLOG."""
        self.write(chunk)
        self._unflushed += len(chunk)
        if self._in_flight is not None and not self._in_flight.done():
            if self._unflushed < BACKLOG:
                return
            await self._in_flight  # back-pressure: the client is slower than the worker
        self._unflushed = 0
        self._in_flight = self.flush()  # Tornado allows one flush in flight at a time

    async def _drain(self) -> None:
        if self._in_flight is not None:
            await self._in_flight
            self._in_flight = None


class ViewHandler(StreamingHandler):
    """Streams a file: nothing is buffered whole, Range and content headers pass through."""

    async def get(self) -> None:
        await self._serve(head=False)

    async def head(self) -> None:
        await self._serve(head=True)

    async def _serve(self, head: bool) -> None:
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        view = parse_view_query(args)
        locator = FileLocator(self.gw)
        location = await locator.locate(view, args.get("prompt_id"))
        if location is not None and location.path is not None:
            await self._send_local(location.path, view.filename, head)
            return
        if location is not None and location.from_index:
            if await self._stream_from(location.worker, view.query, head, missing_ok=True):
                return
            location = await locator.relocate(view, location.worker)
        if location is None:
            raise ComfyError(404, b"")
        await self._stream_from(location.worker, view.query, head, missing_ok=False)

    async def _stream_from(self, worker, query: dict, head: bool, missing_ok: bool) -> bool:
        """Serve the worker's answer; with missing_ok, a 404 is not passed on and False is returned."""
        headers = {h: self.request.headers[h] for h in FORWARDED_REQUEST_HEADERS if h in self.request.headers}
        if not head and zero_copy.usable_for(worker.client.base_url):
            served = await self._splice_from(worker, query, headers, missing_ok)
            if served is not None:
                return served
        missing = False

        def on_headers(status: int, worker_headers: httputil.HTTPHeaders) -> None:
            nonlocal missing
            missing = missing_ok and status == 404
            if not missing:
                self._pass_head(status, worker_headers)

        async def on_chunk(chunk: bytes) -> None:
            if not missing:
                await self._relay(chunk)

        await worker.client.stream("HEAD" if head else "GET", "/view", query=query, headers=headers,
                                   on_headers=on_headers, on_chunk=on_chunk)
        if missing:
            return False
        await self._drain()
        self.finish()
        return True

    def _pass_head(self, status: int, worker_headers: httputil.HTTPHeaders) -> None:
        self.set_status(status)
        self.clear_header("Content-Type")
        for name in PASSED_HEADERS:
            if name in worker_headers:
                self.set_header(name, worker_headers[name])

    async def _splice_from(self, worker, query: dict, headers: dict, missing_ok: bool) -> bool | None:
        """Serve the worker's answer, large bodies moved by the kernel (see _stream_from); None: use
        the ordinary path."""
        timeout = self.gw.settings.worker_request_timeout
        download = await worker.client.open_answer("GET", "/view", query=query, headers=headers)
        try:
            if missing_ok and download.status == 404:
                return False
            if download.chunked or download.length is None or (
                    download.length >= SPLICE_MIN_BYTES and download.status not in (200, 206)):
                return None  # not a plain file answer: let the HTTP client deal with it
            self._pass_head(download.status, download.headers)
            if download.status in (204, 304) or download.status < 200:
                self.finish()  # no body, whatever the head says
                return True
            if download.length < SPLICE_MIN_BYTES:
                # Small answers (thumbnails, errors) go through Tornado: the connection stays reusable.
                self.finish(await worker_connections.read_rest(download, timeout))
                return True
            self.set_header("Connection", "close")
            if download.early:
                self.write(download.early[:download.length])
            await self.flush()
            client = zero_copy.take_socket(self.detach())
            try:
                await zero_copy.splice(download, client, timeout)
            except (OSError, GatewayError) as exc:
                # The status line is out: all that can be done is to cut the connection short.
                logger.info("download of %s from %s stopped: %s", query.get("filename"), worker.name, exc)
            finally:
                zero_copy.hang_up(client)
            self.application.log_request(self)
            return True
        finally:
            download.close()

    async def _send_local(self, path, filename: str, head: bool) -> None:
        size = os.path.getsize(path)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self.set_header("Content-Disposition", f'filename="{filename}"')
        self.set_header("Accept-Ranges", "bytes")
        span = byte_range(self.request.headers.get("Range"), size)
        if span is None:
            self.set_status(416)
            self.set_header("Content-Range", f"bytes */{size}")
            self.finish()
            return
        start, end = span
        self.set_header("Content-Type", content_type)
        if (start, end) != (0, size):
            self.set_status(206)
            self.set_header("Content-Range", httputil._get_content_range(start, end, size))
        self.set_header("Content-Length", str(end - start))
        if head:
            self.finish()
            return
        loop = asyncio.get_running_loop()
        with open(path, "rb") as handle:
            handle.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = await loop.run_in_executor(None, handle.read, min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await self._relay(chunk)
        await self._drain()
        self.finish()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) to send for a Range header; (0, size) without one; None when it cannot be satisfied."""
    if not header:
        return 0, size
    parsed = httputil._parse_request_range(header)
    if parsed is None:
        return 0, size  # an unreadable Range is ignored (RFC 7233)
    start, end = parsed
    if start is not None and start < 0:  # "bytes=-N": the last N bytes
        start = max(0, size + start)
    start = start or 0
    end = size if end is None else min(end, size)
    if start >= size or end <= start:
        return None
    return start, end


class UploadHandler(ComfyHandler):
    """POST /upload/image and /upload/mask with ComfyUI's fields and rename rules.

    The body is parsed as it arrives (files.incoming): the file goes to a temporary file, hashed on
    the way, in steps of RECEIVE_STEP on a thread, and is moved into the store; memory stays flat
    whatever its size.
    """

    incoming: IncomingUpload | None = None

    def initialize(self, mask: bool = False) -> None:
        self.mask = mask
        self._pending = bytearray()

    def body_limit(self) -> int:
        return self.gw.settings.max_upload_size + guard.MULTIPART_ALLOWANCE

    def start_body(self) -> None:
        try:
            self.incoming = IncomingUpload(self.request.headers.get("Content-Type"), self.gw.uploads.incoming_dir())
        except BadForm:
            raise ComfyError(400, b"") from None  # ComfyUI's answer to a body that is not a form

    def receive(self, chunk: bytes):
        self._pending += chunk
        if len(self._pending) >= RECEIVE_STEP:
            return self._write_pending()
        return None

    async def _write_pending(self) -> None:
        data, self._pending = bytes(self._pending), bytearray()
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.incoming.write, data)
        except BadForm as exc:
            self._body_refused = True
            self.refuse(BadRequest(str(exc)))

    def on_refused(self) -> None:
        self._pending = bytearray()
        if self.incoming is not None:
            self.incoming.discard()

    def on_finish(self) -> None:
        self.on_refused()  # whatever was not moved into the store goes

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.on_refused()

    async def post(self) -> None:
        incoming = self.incoming
        try:
            if self._pending:
                await self._write_pending()
            if self._finished:
                return
            await asyncio.get_running_loop().run_in_executor(None, incoming.close)
        except BadForm as exc:
            raise BadRequest(str(exc)) from None
        if not incoming.filename or incoming.path is None:
            raise ComfyError(400, b"")
        limit = self.gw.settings.max_upload_size
        if incoming.size > limit:
            raise PayloadTooLarge(f"the file is {incoming.size} bytes; at most {limit} are accepted",
                                  extra={"limit": limit})
        form = {k: incoming.fields.get(k, "") for k in ("type", "subfolder", "overwrite", "original_ref")}
        upload_type = form["type"] or "input"
        overwrite = form["overwrite"].lower() in ("true", "1")
        if self.mask:
            data = await asyncio.get_running_loop().run_in_executor(None, incoming.path.read_bytes)
            data = await apply_mask(self.gw, data, form["original_ref"])
            answer = await self.gw.uploads.save(data, incoming.filename, upload_type, form["subfolder"], overwrite)
        else:
            answer = await self.gw.uploads.save_file(incoming.path, incoming.sha256, incoming.size,
                                                     incoming.filename, upload_type, form["subfolder"], overwrite)
        self.write_json(answer)


def file_routes() -> list:
    """Routes of this module, each at the bare path and under /api."""
    return [
        *dual(r"/view", ViewHandler),
        *dual(r"/upload/image", UploadHandler),
        *dual(r"/upload/mask", UploadHandler, mask=True),
    ]
