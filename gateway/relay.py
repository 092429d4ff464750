"""Client WebSocket hub: routes worker events to the clients of each job, in ComfyUI's shapes and targeting."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Callable

logger = logging.getLogger(__name__)

PREVIEW_IMAGE, TEXT, PREVIEW_WITH_METADATA = 1, 3, 4
STATUS_INTERVAL = 0.02  # seconds over which queue changes are gathered into one status frame
CLIENT_QUEUE_LIMIT = 2000  # frames waiting for one slow client before it is dropped
# Events ComfyUI sends for a prompt without client_id (broadcast); the others are not sent at all.
NO_CLIENT_BROADCAST = {"progress", "progress_state", "execution_interrupted"}
IMAGE_FORMATS = {"image/jpeg": 1, "image/png": 2}
FORMAT_TYPES = {1: "image/jpeg", 2: "image/png"}


class ClientConnection:
    """One client socket: its sid, negotiated flags and an outgoing queue drained by its own writer."""

    def __init__(self, sid: str, send: Callable, close: Callable, send_nowait: Callable | None = None):
        self.sid = sid
        self.supports_preview_metadata = False
        self.closed = False
        self._send = send
        self._send_nowait = send_nowait or (lambda frame: asyncio.ensure_future(send(frame)))
        self._close = close
        self._queue: asyncio.Queue = asyncio.Queue(CLIENT_QUEUE_LIMIT)
        self._writer = asyncio.ensure_future(self._drain())

    def put(self, frame: str | bytes) -> None:
        """Queue a frame; a client too slow to keep up is disconnected instead of slowing others."""
        if self.closed:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            logger.warning("client %s is too slow; closing its socket", self.sid)
            self.shutdown()
            self._close()

    async def _drain(self) -> None:
        while True:
            frames = [await self._queue.get()]
            while not self._queue.empty():  # write everything waiting, then wait once for the socket
                frames.append(self._queue.get_nowait())
            try:
                for frame in frames[:-1]:
                    self._send_nowait(frame)
                await self._send(frames[-1])
            except Exception:
                return

    def shutdown(self) -> None:
        """Stop the writer; later frames are dropped."""
        self.closed = True
        self._writer.cancel()


class ClientHub:
    """All client sockets by sid; the newest socket of a sid wins, and only it can unregister the sid."""

    def __init__(self, cluster_queue: Callable[[], int]):
        self._clients: dict[str, ClientConnection] = {}
        self._cluster_queue = cluster_queue
        self._last_status: int | None = None
        self._status_scheduled = False

    def __len__(self) -> int:
        return len(self._clients)

    def register(self, conn: ClientConnection) -> None:
        """Route the sid's events to this connection (replacing an older one)."""
        self._clients[conn.sid] = conn

    def unregister(self, conn: ClientConnection) -> None:
        """Forget the sid only if this connection still owns it (newer ComfyUI behaviour)."""
        if self._clients.get(conn.sid) is conn:
            del self._clients[conn.sid]
        conn.shutdown()

    def get(self, sid: str | None) -> ClientConnection | None:
        """The live connection of a sid."""
        return self._clients.get(sid) if sid is not None else None

    def status_frame(self, sid: str | None = None) -> str:
        """A status message with the cluster's queue_remaining (plus sid on the first frame)."""
        data: dict = {"status": {"exec_info": {"queue_remaining": self._cluster_queue()}}}
        if sid is not None:
            data["sid"] = sid
        return json.dumps({"type": "status", "data": data})

    def status_changed(self) -> None:
        """Broadcast the cluster status soon (coalesced: at most one frame per STATUS_INTERVAL)."""
        if not self._status_scheduled:
            self._status_scheduled = True
            # A burst of submissions changes the count many times within milliseconds; one frame with
            # the final count tells clients the same and spares the loop a write to every client each time.
            asyncio.get_running_loop().call_later(STATUS_INTERVAL, self._broadcast_status)

    def _broadcast_status(self) -> None:
        self._status_scheduled = False
        remaining = self._cluster_queue()
        if remaining == self._last_status:
            return  # ComfyUI speaks when its queue changes; an unchanged count is not news
        self._last_status = remaining
        frame = json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}}})
        for conn in list(self._clients.values()):
            conn.put(frame)

    def broadcast(self, frame: str | bytes) -> None:
        """Send to every client."""
        for conn in list(self._clients.values()):
            conn.put(frame)

    # ----- routing of worker events ------------------------------------------------------------
    def forward_text(self, event_type: str, raw: str, job, running_job) -> None:
        """Relay one JSON event of a worker to the clients that ComfyUI would have sent it to."""
        if event_type in ("status", "feature_flags", "logs", "crystools.monitor"):
            if event_type == "status":
                self.status_changed()
            return
        job = job or running_job
        if job is None:
            return
        if job.client_id is not None:
            target = self._clients.get(job.client_id)
            if target is not None:
                target.put(raw)
        elif event_type in NO_CLIENT_BROADCAST:
            self.broadcast(raw)

    def forward_binary(self, event_type: int, frame: bytes, job, running_job) -> None:
        """Relay a binary frame, converting previews between type 1 and 4 as each client negotiated."""
        if event_type == TEXT:
            if job or running_job:
                self.broadcast(frame)
            return
        if event_type == PREVIEW_WITH_METADATA:
            metadata, image = _split_metadata(frame)
            if metadata is None:
                return
        elif event_type == PREVIEW_IMAGE and len(frame) >= 8:
            job = job or running_job
            if job is None:
                return
            image_type = FORMAT_TYPES.get(struct.unpack(">I", frame[4:8])[0], "image/jpeg")
            node = job.progress.node
            metadata = {"node_id": node, "prompt_id": job.prompt_id, "display_node_id": node,
                        "parent_node_id": None, "real_node_id": node, "image_type": image_type}
            image = frame[8:]
        else:
            return
        if job is None:
            return
        legacy = _legacy_frame(metadata, image)
        target = self._clients.get(job.client_id) if job.client_id is not None else None
        if job.client_id is None:
            self.broadcast(legacy)
        elif target is not None:
            target.put(_metadata_frame(metadata, image) if target.supports_preview_metadata else legacy)


def _split_metadata(frame: bytes) -> tuple[dict | None, bytes]:
    if len(frame) < 8:
        return None, b""
    length = struct.unpack(">I", frame[4:8])[0]
    try:
        metadata = json.loads(frame[8:8 + length])
    except ValueError:
        return None, b""
    return metadata, frame[8 + length:]


def _legacy_frame(metadata: dict, image: bytes) -> bytes:
    return struct.pack(">II", PREVIEW_IMAGE, IMAGE_FORMATS.get(metadata.get("image_type"), 1)) + image


def _metadata_frame(metadata: dict, image: bytes) -> bytes:
    header = json.dumps(metadata).encode()
    return struct.pack(">II", PREVIEW_WITH_METADATA, len(header)) + header + image


def job_prompt_id_of_preview(frame: bytes) -> str | None:
    """The prompt id in a type-4 preview frame, if any."""
    metadata, _ = _split_metadata(frame)
    return metadata.get("prompt_id") if metadata else None
