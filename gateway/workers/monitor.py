"""One WebSocket per worker, under the gateway's own client id: every event of every dispatched job."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Callable

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from ..background import BackgroundLoop

logger = logging.getLogger(__name__)

BACKOFF_START, BACKOFF_MAX = 0.25, 10.0
MAX_FRAME = 256 * 1024 * 1024  # full-size previews (SaveImageWebsocket) can be large


class WorkerMonitor(BackgroundLoop):
    """Keeps a socket open to one worker, reconnecting with backoff, and hands every frame on."""

    def __init__(self, worker, client_id: str, on_text: Callable, on_binary: Callable,
                 on_connect: Callable, timeout: Callable[[], float]):
        self.worker = worker
        self.client_id = client_id
        self._on_text = on_text
        self._on_binary = on_binary
        self._on_connect = on_connect
        self._timeout = timeout
        self._conn = None
        self._closed: asyncio.Event | None = None
        self.connects = 0

    async def stop(self) -> None:
        """Close for good."""
        await super().stop()
        self._close()

    def reconnect(self) -> None:
        """Drop the socket; the loop opens a new one (used when the socket went silent)."""
        logger.info("monitor of %s: reconnecting", self.worker.name)
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._closed is not None:
            self._closed.set()

    async def _loop(self) -> None:
        delay = BACKOFF_START
        while True:
            try:
                await self._connect()
                delay = BACKOFF_START
                await self._read_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: wait and connect again
                logger.debug("monitor of %s: %s", self.worker.name, exc)
            self.worker.monitor_connected = False
            self._conn = None
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)

    async def _connect(self) -> None:
        client = self.worker.client
        request = HTTPRequest(client.ws_url(self.client_id), headers=client.auth_headers(),
                              connect_timeout=min(10.0, self._timeout()), request_timeout=min(10.0, self._timeout()))
        self._closed = asyncio.Event()
        # A callback, not read_message(): each frame is handled as soon as it is parsed, instead of
        # passing through a one-slot queue that costs extra loop turns per frame and falls behind
        # when the loop is busy writing to many clients.
        self._conn = await websocket_connect(request, max_message_size=MAX_FRAME, ping_interval=15, ping_timeout=10,
                                             on_message_callback=self._on_message)
        # Ask for type-4 previews: they carry the prompt id, so each can be routed to its job's client.
        await self._conn.write_message(json.dumps({"type": "feature_flags",
                                                   "data": {"supports_preview_metadata": True}}))
        self.connects += 1
        self.worker.monitor_connected = True
        logger.info("monitor of %s connected", self.worker.name)
        self._on_connect(self.worker, self.connects > 1)

    async def _read_all(self) -> None:
        await self._closed.wait()

    def _on_message(self, message: str | bytes | None) -> None:
        if message is None:
            self._closed.set()
            return
        try:
            if isinstance(message, bytes):
                self._binary(message)
            else:
                self._text(message)
        except Exception:  # a bug in one handler must not close the worker's socket
            logger.exception("monitor of %s: event handling failed", self.worker.name)

    def _text(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        event_type, data = message.get("type"), message.get("data")
        if not isinstance(data, dict):
            data = {}
        self._on_text(self.worker, event_type, data, raw)

    def _binary(self, frame: bytes) -> None:
        if len(frame) < 4:
            return
        event_type = struct.unpack(">I", frame[:4])[0]
        self._on_binary(self.worker, event_type, frame)
