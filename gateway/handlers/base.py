"""Base handlers: the guard before any body byte (Host/Origin, keys, size), bounded bodies, JSON in and out,
the one error shape."""

from __future__ import annotations

import json
import logging
from typing import Any

import tornado.web
import tornado.websocket
from tornado.iostream import StreamBufferFullError, StreamClosedError

from ..clients.relay import CLIENT_BUFFER_LIMIT
from ..errors import BadRequest, ComfyError, GatewayError, PayloadTooLarge, StoreUnavailable, Unauthorized, comfy_400
from ..store.errors import is_store_failure
from . import guard

logger = logging.getLogger(__name__)

STORE_AWAY = "the database cannot be reached right now; try again shortly (the gateway log says why)"


class GatewaySocketHandler(tornado.websocket.WebSocketHandler):
    """Plumbing of the gateway's WebSockets: Host/Origin and API keys checked before the upgrade, and
    writes bounded so a client that stops reading is dropped instead of growing the gateway's memory."""

    token: str | None = None

    @property
    def gw(self):
        """The Gateway this socket serves."""
        return self.application.settings["gateway"]

    def check_origin(self, origin: str) -> bool:
        return True  # checked (with the Host) in get(), before the upgrade, by guard.check_site

    async def get(self, *args, **kwargs):
        try:
            guard.check_site(self.gw, self.request)
            self.token = guard.presented_token(self)
            if not guard.key_scope(self.gw.settings, self.token):
                raise Unauthorized("an API key is required (Authorization: Bearer KEY or ?api_key=KEY)")
            self.admit()
        except GatewayError as exc:
            self.set_status(exc.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(exc.to_json()))
            return
        return await super().get(*args, **kwargs)

    def admit(self) -> None:
        """A socket's own rule after the checks above (raise a GatewayError to refuse the upgrade)."""

    def bound_writes(self) -> None:
        """Past CLIENT_BUFFER_LIMIT unsent bytes the stream refuses writes: the client is not reading."""
        self.ws_connection.stream.max_write_buffer_size = CLIENT_BUFFER_LIMIT

    def write_frame(self, frame: bytes) -> bool:
        """Put a whole WebSocket frame into the socket's buffer; False once the client is gone or dropped."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():  # nothing may follow a close frame
            return False
        try:
            connection.stream.write(frame)
            return True
        except StreamBufferFullError:
            logger.warning("WebSocket client %s is too slow (over %d bytes unsent); closing its socket",
                           self.request.remote_ip, CLIENT_BUFFER_LIMIT)
            connection.stream.close()  # no close frame: it could not be written either
        except StreamClosedError:
            pass
        return False


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Common plumbing for every HTTP route. Bodies are streamed (stream_request_body), so the guard runs
    on the head alone: nothing of a refused body is ever held, and a body over its limit is cut off."""

    needs_admin = False  # True for routes that change workers or settings
    json_routes = True  # the gateway's own routes: bodies must be declared application/json
    token: str | None = None
    _body_parts: list | None = None
    _body_size = 0
    _body_limit = 0
    _body_refused = False
    _body_open = False  # prepare() passed: Tornado reads the body next (an earlier answer ends the connection)

    @property
    def gw(self):
        """The Gateway this handler serves."""
        return self.application.settings["gateway"]

    def base_url(self) -> str:
        """scheme://host of this request, for URLs the gateway hands out."""
        return f"{self.request.protocol}://{self.request.host}"

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")

    def body_limit(self) -> int:
        """Most bytes this route accepts as a body."""
        return self.gw.settings.max_json_body_size

    async def prepare(self) -> None:
        request, settings = self.request, self.gw.settings
        for name, value in guard.cors_headers(self.gw, request).items():
            self.set_header(name, value)
        if request.method not in guard.READ_METHODS:
            guard.check_site(self.gw, request)
        self.token = guard.presented_token(self)
        if self.needs_admin and request.method not in guard.READ_METHODS:
            guard.require_admin(settings, self.token, "this change")
        elif not guard.key_scope(settings, self.token):
            raise Unauthorized("an API key is required (Authorization: Bearer KEY or ?api_key=KEY)")
        if self.json_routes and request.method not in guard.READ_METHODS:
            guard.check_json_type(request)
        self.open_body()

    def open_body(self) -> None:
        """Check the declared size and get ready for the body (the last step of prepare)."""
        request = self.request
        self._body_limit = self.body_limit()
        guard.check_size(request, self._body_limit, "request body")
        # Tornado's own limit a little above ours, so a chunked body over it gets our 413 first.
        request.connection.set_max_body_size(self._body_limit + guard.MULTIPART_ALLOWANCE)
        self.start_body()
        self._body_open = True

    def start_body(self) -> None:
        """Get ready to receive the body (after the guard passed); the default keeps it in memory."""
        self._body_parts = []

    def data_received(self, chunk: bytes) -> Any:
        if self._body_refused or self._finished:
            return None
        self._body_size += len(chunk)
        if self._body_size > self._body_limit:
            self._body_refused = True
            self.refuse(PayloadTooLarge(f"the request body is over the limit of {self._body_limit} bytes",
                                        extra={"limit": self._body_limit}))
            return None
        return self.receive(chunk)

    def receive(self, chunk: bytes) -> Any:
        """Keep one piece of the body (may return an awaitable: Tornado then waits before reading more)."""
        self._body_parts.append(chunk)
        return None

    def refuse(self, exc: GatewayError) -> None:
        """Answer with an error while the body is still arriving; Tornado then closes the connection."""
        self.on_refused()
        self.clear()
        self.set_status(exc.status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Connection", "close")
        self.finish(json.dumps(exc.to_json()))

    def on_refused(self) -> None:
        """Drop what was received so far (uploads remove their temporary file)."""
        self._body_parts = []

    @property
    def body(self) -> bytes:
        """The whole (bounded) request body."""
        parts = self._body_parts
        if not parts:
            return b""
        if len(parts) > 1:
            parts[:] = [b"".join(parts)]
        return parts[0]

    def require_admin(self, what: str) -> None:
        """Unauthorized unless this request has admin scope (the admin token, when one is set)."""
        guard.require_admin(self.gw.settings, self.token, what)

    def json_body(self, required: bool = True) -> Any:
        """The request body parsed as JSON; BadRequest when it is not."""
        body = self.body
        if not body:
            if required:
                raise BadRequest("the request body must be JSON")
            return None
        try:
            return guard.load_json(body)
        except ValueError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None

    def write_json(self, data: Any, status: int = 200) -> None:
        """Send JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self._body_open:
            # Refused from the head alone: the body (if any) is never read, so the connection ends
            # after this answer; saying so keeps clients from sending the next request on it.
            self.set_header("Connection", "close")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ComfyError):
            self._write_comfy_error(exc)
            return
        if isinstance(exc, GatewayError):
            body = exc.to_json()
        elif isinstance(exc, tornado.web.HTTPError):
            body = {"error": {"type": "http_error", "message": exc.log_message or self._reason}}
        else:
            body = {"error": {"type": "internal_error", "message": "internal error; see the gateway log"}}
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body))

    def _write_comfy_error(self, exc: ComfyError) -> None:
        for name, value in exc.headers.items():
            self.set_header(name, value)
        if isinstance(exc.body, (dict, list)):
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(exc.body))
        elif isinstance(exc.body, str):
            self.set_header("Content-Type", "text/plain; charset=utf-8")  # aiohttp's web.Response(text=)
            self.finish(exc.body)
        else:
            self.set_header("Content-Type", "application/octet-stream")  # what aiohttp sends for these
            if not exc.body:
                # Nothing to sniff; with nosniff, a browser that asked for a stylesheet (the editor's optional
                # user.css) would log an error for ComfyUI's ordinary empty 404.
                self.clear_header("X-Content-Type-Options")
            self.finish(exc.body or b"")

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, StreamClosedError):
            return  # the client went away (or a refused body's connection was closed): nothing to report
        if is_store_failure(value):  # an outage: one line per request, not a traceback
            logger.warning("%s %s -> 503: the store is unreachable: %s", self.request.method, self.request.path,
                           value)
            return
        if isinstance(value, (GatewayError, ComfyError)):
            level = logging.WARNING if getattr(value, "status", 400) >= 500 else logging.DEBUG
            logger.log(level, "%s %s -> %s: %s", self.request.method, self.request.path,
                       getattr(value, "status", "?"), getattr(value, "message", value))
            return
        super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is not None and is_store_failure(exc):
            exc = StoreUnavailable(STORE_AWAY)
            kwargs["exc_info"] = (type(exc), exc, None)
        if isinstance(exc, (GatewayError, ComfyError)):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def options(self, *args: Any) -> None:
        self.set_status(204 if self._headers.get("Access-Control-Allow-Origin") else 200)
        self.finish()


class ComfyHandler(BaseHandler):
    """ComfyUI-compatible routes: ComfyUI's answer shapes; bad JSON is a 400 in ComfyUI's error shape.

    Any Content-Type is read as JSON, as ComfyUI does (its own script examples send none); a page on
    another site is stopped by the Origin check instead.
    """

    json_routes = False

    def comfy_json(self) -> Any:
        """The body as JSON the way aiohttp's request.json() would fail on it."""
        body = self.body
        if not body:
            return None
        try:
            return guard.load_json(body)
        except ValueError as exc:
            raise comfy_400("invalid_json", f"the request body is not valid JSON: {exc}") from None

    def write_empty(self) -> None:
        """200 with an empty body and no Content-Type, as ComfyUI answers POST /queue and friends."""
        self.clear_header("Content-Type")
        self.set_status(200)
        self.finish()


def dual(route: str, handler: type, **kwargs: Any) -> list:
    """A route at its ComfyUI bare path and under /api, as ComfyUI registers every route twice."""
    return [(route, handler, kwargs), ("/api" + route, handler, kwargs)]
