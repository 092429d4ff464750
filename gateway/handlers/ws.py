"""GET /ws?clientId=: the client's events from whichever worker runs its jobs, as ComfyUI sends them."""

from __future__ import annotations

import json
import logging
import uuid

from tornado.iostream import StreamBufferFullError, StreamClosedError

from ..clients.relay import CLIENT_BUFFER_LIMIT, ClientConnection
from ..jobs.model import RUNNING
from .base import GatewaySocketHandler

logger = logging.getLogger(__name__)

MAX_UPLOAD_SIZE = 100 * 1024 * 1024  # ComfyUI's default, which the workers apply to what the gateway copies


class ClientSocketHandler(GatewaySocketHandler):
    """One client socket; its sid is clientId or a minted uuid4 hex, as in ComfyUI."""

    conn: ClientConnection | None = None

    def open(self) -> None:
        sid = self.get_query_argument("clientId", None) or uuid.uuid4().hex
        self._negotiated = False
        # Past this many unsent bytes the stream refuses writes: the client is not reading.
        self.ws_connection.stream.max_write_buffer_size = CLIENT_BUFFER_LIMIT
        self.conn = ClientConnection(sid, self._write_frame)
        hub = self.gw.hub
        hub.register(self.conn)
        self.conn.put(hub.status_frame(sid))
        running = next((j for j in self.gw.jobs.active.values() if j.client_id == sid and j.state == RUNNING
                        and j.progress.node is not None), None)
        if running is not None:
            self.conn.put(json.dumps({"type": "executing", "data": {"node": running.progress.node}}))

    def _write_frame(self, frame: bytes) -> bool:
        """Put a whole WebSocket frame into the socket's buffer; False once the client is gone or dropped."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():  # nothing may follow a close frame
            return False
        try:
            connection.stream.write(frame)
            return True
        except StreamBufferFullError:
            logger.warning("client %s is too slow (over %d bytes unsent); closing its socket",
                           self.conn.sid if self.conn else "?", CLIENT_BUFFER_LIMIT)
            connection.stream.close()  # no close frame: it could not be written either
        except StreamClosedError:
            pass
        return False

    def on_message(self, message: str | bytes) -> None:
        if self._negotiated or isinstance(message, bytes):
            return
        try:
            data = json.loads(message)
        except ValueError:
            return  # non-JSON text before the flags does not count as the first message
        self._negotiated = True
        if isinstance(data, dict) and data.get("type") == "feature_flags" and self.conn is not None:
            flags = data.get("data") or {}
            self.conn.supports_preview_metadata = bool(isinstance(flags, dict)
                                                       and flags.get("supports_preview_metadata"))
            self.conn.put(json.dumps({"type": "feature_flags", "data": {
                "supports_preview_metadata": True, "max_upload_size": MAX_UPLOAD_SIZE}}))

    def on_close(self) -> None:
        if self.conn is not None:
            self.gw.hub.unregister(self.conn)


def ws_routes() -> list:
    """The socket at /ws and /api/ws."""
    return [(r"/ws", ClientSocketHandler), (r"/api/ws", ClientSocketHandler)]
