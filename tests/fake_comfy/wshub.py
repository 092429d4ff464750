"""WebSocket side of the fake server: the sid registry and an ordered publisher.

Like ComfyUI, events are put on one queue and sent by a single publisher task,
so frames reach every socket in the order they were produced and a slow
client never blocks execution.  ``sid=None`` means broadcast.

The registry reproduces 0.3.64's bookkeeping, including its caveat: a new
socket with an existing clientId replaces the old one, and when *either*
socket closes the sid is removed unconditionally (§7.1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import uuid
from typing import Any, Dict, Optional

from aiohttp import WSMsgType, web

from .imaging import png_bytes

log = logging.getLogger(__name__)

SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": 104857600}
PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4


class WsHub:
    """Connected sockets keyed by sid, plus the outgoing message queue."""

    def __init__(self, sim):
        self.sim = sim
        self.sockets: Dict[str, web.WebSocketResponse] = {}
        self.metadata: Dict[str, Dict[str, Any]] = {}
        self.all_sockets: set = set()
        self._queue: "asyncio.Queue" = asyncio.Queue()
        self._task: Optional[asyncio.Task] = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.ensure_future(self._publisher())

    async def stop(self, graceful: bool) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None
        if graceful and self.all_sockets:
            async def close(ws):
                try:
                    await asyncio.wait_for(ws.close(code=1001, message=b"Server shutdown"), 0.5)
                except Exception:  # noqa: BLE001 - best effort on shutdown
                    pass
            await asyncio.gather(*(close(ws) for ws in list(self.all_sockets)))
        self.sockets.clear()
        self.metadata.clear()
        self.all_sockets.clear()

    # -- sending -----------------------------------------------------------
    def send(self, event: str, data: Any, sid: Optional[str]) -> None:
        """Queue a JSON event for ``sid`` (None = broadcast)."""
        self._queue.put_nowait(("json", {"type": event, "data": data}, sid))

    def send_bytes(self, payload: bytes, sid: Optional[str]) -> None:
        """Queue a binary frame for ``sid`` (None = broadcast)."""
        self._queue.put_nowait(("bytes", payload, sid))

    def supports_metadata(self, sid: Optional[str]) -> bool:
        if sid is None or sid not in self.metadata:
            return False
        return bool(self.metadata[sid].get("feature_flags", {}).get("supports_preview_metadata"))

    def send_preview(self, pil, sid: Optional[str], meta: Optional[dict]) -> None:
        """Type-4 frame if ``meta`` is given, else a legacy type-1 PNG frame."""
        image = png_bytes(pil)
        if meta is not None:
            header = json.dumps(meta).encode()
            payload = (struct.pack(">I", PREVIEW_IMAGE_WITH_METADATA)
                       + struct.pack(">I", len(header)) + header + image)
        else:
            payload = struct.pack(">I", PREVIEW_IMAGE) + struct.pack(">I", 2) + image
        self.send_bytes(payload, sid)

    def send_text(self, node_id: str, text: str) -> None:
        """Binary type-3 text frame, always broadcast (sid None) as in 0.3.64."""
        nid = node_id.encode()
        payload = struct.pack(">I", TEXT) + struct.pack(">I", len(nid)) + nid + text.encode()
        self.send_bytes(payload, None)

    async def _publisher(self) -> None:
        while True:
            kind, message, sid = await self._queue.get()
            if sid is None:
                targets = list(self.sockets.values())
            elif sid in self.sockets:
                targets = [self.sockets[sid]]
            else:
                targets = []
            for ws in targets:
                await self._deliver(ws, kind, message)

    @staticmethod
    async def _deliver(ws, kind, message) -> None:
        try:
            if kind == "json":
                await ws.send_json(message)
            else:
                await ws.send_bytes(message)
        except Exception as ex:  # noqa: BLE001 - a dead socket must not stop the publisher
            log.debug("send failed: %s", ex)

    # -- the /ws handler -------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.metadata[sid] = {"feature_flags": {}}
        self.all_sockets.add(ws)
        log.debug("ws connected sid=%s", sid)
        try:
            await ws.send_json({"type": "status", "data": {
                "status": self.sim.queue.queue_info(), "sid": sid}})
            engine = self.sim.engine
            if engine.client_id == sid and engine.last_node_id is not None:
                await ws.send_json({"type": "executing", "data": {"node": engine.last_node_id}})
            first = True
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        continue
                    if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                        flags = data.get("data", {})
                        if sid in self.metadata:
                            self.metadata[sid]["feature_flags"] = flags
                        await ws.send_json({"type": "feature_flags", "data": dict(SERVER_FEATURES)})
                    first = False
                elif msg.type == WSMsgType.ERROR:
                    log.debug("ws error sid=%s: %s", sid, ws.exception())
        finally:
            # 0.3.64 caveat: unconditional removal, even if a newer socket owns the sid.
            self.sockets.pop(sid, None)
            self.metadata.pop(sid, None)
            self.all_sockets.discard(ws)
            log.debug("ws disconnected sid=%s", sid)
        return ws
