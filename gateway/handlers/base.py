"""Base handlers: JSON in and out, the one error shape, ComfyUI's origin check, optional API keys."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import tornado.web
import tornado.websocket

from ..errors import BadRequest, ComfyError, GatewayError, Unauthorized, comfy_400

logger = logging.getLogger(__name__)


def is_loopback_host(host: str) -> bool:
    """True when a Host header names a loopback address (ComfyUI's origin check applies then)."""
    hostname = urlsplit("//" + host).hostname or ""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def origin_allowed(host: str | None, origin: str | None) -> bool:
    """ComfyUI's default CSRF guard: a loopback Host with a different Origin is refused."""
    if not host or not origin or not is_loopback_host(host):
        return True
    parts = urlsplit(origin)
    host_parts = urlsplit("//" + host)
    if host_parts.port is None or parts.port is None:
        return (host_parts.hostname or "") == (parts.hostname or "")
    return host.lower() == parts.netloc.lower()


EDITOR_PREFIX = "/comfy/"
EDITOR_COOKIE = "comfyui_gateway_key"  # set by POST /comfy/login (handlers/editor.py)


def bearer_token(handler: tornado.web.RequestHandler) -> str | None:
    """The token from 'Authorization: Bearer X' or ?api_key=X; under /comfy/ also the editor's cookie,
    since the ComfyUI editor cannot add a header to its own requests."""
    header = handler.request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    token = handler.get_query_argument("api_key", None)
    if token is None and handler.request.path.startswith(EDITOR_PREFIX):
        token = handler.get_cookie(EDITOR_COOKIE)
    return token


def token_matches(token: str | None, allowed: tuple[str, ...] | list[str]) -> bool:
    """Constant-time comparison against each allowed key."""
    return bool(token) and any(hmac.compare_digest(token, key) for key in allowed)


def api_key_ok(handler: tornado.web.RequestHandler, settings) -> bool:
    """True when no API keys are set, or the request carries one of them (or the admin token)."""
    if not settings.api_keys:
        return True
    allowed = settings.api_keys + ((settings.admin_token,) if settings.admin_token else ())
    return token_matches(bearer_token(handler), allowed)


class GatewaySocketHandler(tornado.websocket.WebSocketHandler):
    """Plumbing of the gateway's WebSockets: its origin rule, and API keys checked before the upgrade."""

    @property
    def gw(self):
        """The Gateway this socket serves."""
        return self.application.settings["gateway"]

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(self.request.headers.get("Host"), origin)

    async def get(self, *args, **kwargs):
        if not api_key_ok(self, self.gw.settings):
            self.set_status(401)
            self.finish()
            return
        return await super().get(*args, **kwargs)


class BaseHandler(tornado.web.RequestHandler):
    """Common plumbing for every HTTP route."""

    needs_admin = False  # True for routes that change workers or settings

    @property
    def gw(self):
        """The Gateway this handler serves."""
        return self.application.settings["gateway"]

    def base_url(self) -> str:
        """scheme://host of this request, for URLs the gateway hands out."""
        return f"{self.request.protocol}://{self.request.host}"

    def prepare(self) -> None:
        if not origin_allowed(self.request.headers.get("Host"), self.request.headers.get("Origin")):
            self.set_status(403)
            self.finish()
            return
        settings = self.gw.settings
        token = bearer_token(self)
        if self.needs_admin and self.request.method not in ("GET", "HEAD") and settings.admin_token:
            if not token_matches(token, (settings.admin_token,)):
                raise Unauthorized("this change needs the admin token (Authorization: Bearer ...)")
        elif not api_key_ok(self, settings):
            raise Unauthorized("an API key is required (Authorization: Bearer KEY or ?api_key=KEY)")

    def json_body(self, required: bool = True) -> Any:
        """The request body parsed as JSON; BadRequest when it is not."""
        if not self.request.body:
            if required:
                raise BadRequest("the request body must be JSON")
            return None
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None

    def write_json(self, data: Any, status: int = 200) -> None:
        """Send JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
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
        if isinstance(exc.body, (dict, list)):
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(exc.body))
        elif isinstance(exc.body, str):
            self.set_header("Content-Type", "text/plain; charset=utf-8")  # aiohttp's web.Response(text=)
            self.finish(exc.body)
        else:
            self.set_header("Content-Type", "application/octet-stream")  # what aiohttp sends for these
            self.finish(exc.body or b"")

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, (GatewayError, ComfyError)):
            level = logging.WARNING if getattr(value, "status", 400) >= 500 else logging.DEBUG
            logger.log(level, "%s %s -> %s: %s", self.request.method, self.request.path,
                       getattr(value, "status", "?"), getattr(value, "message", value))
            return
        super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, (GatewayError, ComfyError)):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def options(self, *args: Any) -> None:
        self.set_status(200)
        self.finish()


class ComfyHandler(BaseHandler):
    """ComfyUI-compatible routes: ComfyUI's answer shapes; bad JSON is a 400 in ComfyUI's error shape."""

    def comfy_json(self) -> Any:
        """The body as JSON the way aiohttp's request.json() would fail on it."""
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError):
            raise comfy_400("invalid_json", "the request body is not valid JSON") from None

    def write_empty(self) -> None:
        """200 with an empty body and no Content-Type, as ComfyUI answers POST /queue and friends."""
        self.clear_header("Content-Type")
        self.set_status(200)
        self.finish()


def dual(route: str, handler: type, **kwargs: Any) -> list:
    """A route at its ComfyUI bare path and under /api, as ComfyUI registers every route twice."""
    return [(route, handler, kwargs), ("/api" + route, handler, kwargs)]
