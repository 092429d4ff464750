"""Client WebSocket hub: routes worker events to the clients of each job, in ComfyUI's shapes and targeting."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections import deque
from typing import Callable

logger = logging.getLogger(__name__)

PREVIEW_IMAGE, TEXT, PREVIEW_WITH_METADATA = 1, 3, 4
STATUS_INTERVAL = 0.02  # seconds over which queue changes are gathered into one status frame
BROADCAST_SLICE = 8  # clients written per loop turn when a frame goes to everyone
CLIENT_BUFFER_LIMIT = 32 * 1024 * 1024  # bytes waiting for one client before it is dropped as too slow
# Events ComfyUI sends for a prompt without client_id (broadcast); the others are not sent at all.
NO_CLIENT_BROADCAST = {"progress", "progress_state", "execution_interrupted"}
IMAGE_FORMATS = {"image/jpeg": 1, "image/png": 2}
FORMAT_TYPES = {1: "image/jpeg", 2: "image/png"}


def ws_frame(message: str | bytes) -> bytes:
    """One whole unmasked WebSocket frame (server to client): text for str, binary for bytes."""
    if isinstance(message, str):
        payload, first = message.encode(), 0x81  # FIN + text
    else:
        payload, first = message, 0x82  # FIN + binary
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


class ClientConnection:
    """One client socket: its sid, negotiated flags, and a writer of whole WebSocket frames.

    Frames are written straight into the socket's buffer, in order, as each event arrives: no queue,
    no task and no future per frame, because at hundreds of events a second to a hundred clients that
    bookkeeping (and the extra loop turn before the write) was what delayed events. A frame that is
    sent to many clients is framed once and held back briefly (see ClientHub.broadcast). A client
    that stops reading is disconnected by its writer once too much is waiting for it, so it never
    slows anyone else.
    """

    def __init__(self, sid: str, write: Callable[[bytes], bool]):
        self.sid = sid
        self.key: str | None = None  # the API key the socket was opened with (a takeover needs the same)
        self.supports_preview_metadata = False
        self.closed = False
        self._write = write
        self._held: list[bytes] = []  # broadcast frames not written yet; they go out before anything newer

    def put(self, message: str | bytes) -> None:
        """Send one message (str: text frame, bytes: binary frame)."""
        self.put_frame(ws_frame(message))

    def put_frame(self, frame: bytes) -> None:
        """Send one already framed message now (after any held ones, in one write)."""
        if self._held:
            self._held.append(frame)
            self.flush()
        elif not self.closed and not self._write(frame):
            self.closed = True

    def hold(self, frame: bytes) -> bool:
        """Queue a frame for the next flush(); True if nothing was held before."""
        if self.closed:
            return False
        self._held.append(frame)
        return len(self._held) == 1

    def flush(self) -> None:
        """Write the held frames; a client that is gone or too slow is closed for good."""
        if not self._held:
            return
        frames, self._held = self._held, []
        if not self.closed and not self._write(frames[0] if len(frames) == 1 else b"".join(frames)):
            self.closed = True

    def shutdown(self) -> None:
        """Later frames are dropped."""
        self.closed = True


class ClientHub:
    """All client sockets by sid; the newest socket of a sid wins, and only it can unregister the sid."""

    def __init__(self, cluster_queue: Callable[[], int]):
        self._clients: dict[str, ClientConnection] = {}
        self._cluster_queue = cluster_queue
        # Where events also go for clients connected to other gateway instances: (kind, sid or None for
        # everyone, metadata, payload). Set on the instance that hears the workers (the dispatcher).
        self.remote: Callable[[str, str | None, dict, bytes], None] | None = None
        self._last_status: int | None = None
        self._status_scheduled = False
        self._to_flush: deque[ClientConnection] = deque()

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

    def status_frame(self, sid: str | None = None, remaining: int | None = None) -> str:
        """A status message with the cluster's queue_remaining (plus sid on the first frame)."""
        if remaining is None:
            remaining = self._cluster_queue()
        data: dict = {"status": {"exec_info": {"queue_remaining": remaining}}}
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
        self.broadcast(self.status_frame(remaining=remaining))

    def broadcast(self, message: str | bytes) -> None:
        """Send to every client: framed once, written BROADCAST_SLICE clients per loop turn.

        A write to a loopback socket costs tens of microseconds, so writing to a hundred clients at once
        would hold every other event (a progress frame due to one client) for milliseconds. In slices,
        other events are handled between them; a client's own frames still arrive in order because
        anything sent to it meanwhile first writes what is held for it.
        """
        frame = ws_frame(message)
        was_idle = not self._to_flush
        for conn in self._clients.values():
            if conn.hold(frame):
                self._to_flush.append(conn)
        if was_idle and self._to_flush:
            asyncio.get_running_loop().call_soon(self._flush_slice)

    def _flush_slice(self) -> None:
        try:
            for _ in range(min(BROADCAST_SLICE, len(self._to_flush))):
                self._to_flush.popleft().flush()
        finally:  # one failing client must not stop the broadcasts for good
            if self._to_flush:
                asyncio.get_running_loop().call_soon(self._flush_slice)

    # ----- routing of worker events ------------------------------------------------------------
    def forward_text(self, event_type: str, raw: str, job, running_job) -> None:
        """Relay one JSON event of a worker (not its status: see status_changed) to the clients that
        ComfyUI would have sent it to."""
        if event_type in ("feature_flags", "logs", "crystools.monitor"):
            return
        job = job or running_job
        if job is None:
            return
        if job.client_id is not None:
            self.send_text(job.client_id, raw)
        elif event_type in NO_CLIENT_BROADCAST:
            self.broadcast(raw)
            self._to_remote("text", None, {}, raw.encode())

    def send_text(self, sid: str, raw: str, remote: bool = True) -> None:
        """A text frame to one client, wherever it is connected."""
        target = self._clients.get(sid)
        if target is not None:
            target.put(raw)
        if remote:
            # Another instance may hold a (newer) socket of this sid: a client may reconnect anywhere.
            self._to_remote("text", sid, {}, raw.encode())

    def forward_binary(self, event_type: int, frame: bytes, find_job: Callable, running_job) -> None:
        """Relay a binary frame, converting previews between type 1 and 4 as each client negotiated.

        find_job(prompt_id) names the job of a type-4 preview (its metadata carries the prompt id).
        """
        job = None
        if event_type == TEXT:
            if running_job:
                self.broadcast(frame)
                self._to_remote("binary", None, {}, frame)
            return
        if event_type == PREVIEW_WITH_METADATA:
            metadata, image = _split_metadata(frame)
            if metadata is None:
                return
            job = find_job(metadata.get("prompt_id") or "")
        elif event_type == PREVIEW_IMAGE and len(frame) >= 8:
            job = running_job
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
        self.send_preview(job.client_id, metadata, image)

    def send_preview(self, sid: str | None, metadata: dict, image: bytes, remote: bool = True) -> None:
        """A preview to one client (sid None: to everyone, legacy form) in the form it negotiated."""
        if sid is None:
            self.broadcast(_legacy_frame(metadata, image))
        else:
            target = self._clients.get(sid)
            if target is not None:
                target.put(_metadata_frame(metadata, image) if target.supports_preview_metadata
                           else _legacy_frame(metadata, image))
        if remote:
            self._to_remote("preview", sid, metadata, image)

    def _to_remote(self, kind: str, sid: str | None, metadata: dict, payload: bytes) -> None:
        if self.remote is not None:
            self.remote(kind, sid, metadata, payload)

    def deliver_remote(self, kind: str, sid: str | None, metadata: dict, payload: bytes) -> None:
        """An event another instance relayed: to this instance's clients only."""
        if kind == "text":
            text = payload.decode("utf-8", "replace")
            if sid is None:
                self.broadcast(text)
            else:
                self.send_text(sid, text, remote=False)
        elif kind == "binary":
            self.broadcast(payload)
        elif kind == "preview":
            self.send_preview(sid, metadata, payload, remote=False)


def _split_metadata(frame: bytes) -> tuple[dict | None, bytes]:
    if len(frame) < 8:
        return None, b""
    length = struct.unpack(">I", frame[4:8])[0]
    try:
        metadata = json.loads(frame[8:8 + length])
    except ValueError:
        return None, b""
    if not isinstance(metadata, dict):
        return None, b""
    return metadata, frame[8 + length:]


def _legacy_frame(metadata: dict, image: bytes) -> bytes:
    return struct.pack(">II", PREVIEW_IMAGE, IMAGE_FORMATS.get(metadata.get("image_type"), 1)) + image


def _metadata_frame(metadata: dict, image: bytes) -> bytes:
    header = json.dumps(metadata).encode()
    return struct.pack(">II", PREVIEW_WITH_METADATA, len(header)) + header + image
