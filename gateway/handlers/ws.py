"""GET /ws?clientId=: the client's events from whichever worker runs its jobs, as ComfyUI sends them."""

from __future__ import annotations

import json
import logging
import uuid

from ..clients.relay import ClientConnection
from ..errors import Conflict
from ..jobs.model import RUNNING
from ..security.tokens import token_matches
from .base import GatewaySocketHandler

logger = logging.getLogger(__name__)


class ClientSocketHandler(GatewaySocketHandler):
    """One client socket; its sid is clientId or a minted uuid4 hex, as in ComfyUI."""

    conn: ClientConnection | None = None

    def admit(self) -> None:
        sid = self.get_query_argument("clientId", None)
        current = self.gw.hub.get(sid) if sid else None
        if current is not None and self.gw.settings.api_keys and not token_matches(
                self.token, (current.key,) if current.key else ()):
            # With API keys on, a connected client id is taken over only by a socket with the same key.
            raise Conflict("this clientId is connected with another API key", type="client_id_in_use")

    def open(self) -> None:
        sid = self.get_query_argument("clientId", None) or uuid.uuid4().hex
        self._negotiated = False
        self.bound_writes()
        self.conn = ClientConnection(sid, self.write_frame)
        self.conn.key = self.token
        hub = self.gw.hub
        hub.register(self.conn)
        self.conn.put(hub.status_frame(sid))
        running = next((j for j in self.gw.jobs.active.values() if j.client_id == sid and j.state == RUNNING
                        and j.progress.node is not None), None)
        if running is not None:
            self.conn.put(json.dumps({"type": "executing", "data": {"node": running.progress.node}}))

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
                "supports_preview_metadata": True, "max_upload_size": self.gw.settings.max_upload_size}}))

    def on_close(self) -> None:
        if self.conn is not None:
            self.gw.hub.unregister(self.conn)


def ws_routes() -> list:
    """The socket at /ws and /api/ws."""
    return [(r"/ws", ClientSocketHandler), (r"/api/ws", ClientSocketHandler)]
