"""What every request passes before its body is read: Host and Origin, credentials and their scope,
the body's type and size. Handlers call these from prepare(); see docs/architecture.md (Security).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import Forbidden, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from ..security.hosts import forwarded_client
from ..security.tokens import token_matches, well_formed

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "gateway_token"  # HttpOnly, SameSite=Strict: set from the admin link's ?token= (see cookie_name)
EDITOR_PREFIX = "/comfy/"
EDITOR_COOKIE = "comfyui_gateway_key"  # the ComfyUI editor's sign-in, under /comfy/ only (handlers/editor.py)
MULTIPART_ALLOWANCE = 1024 * 1024  # an upload's form fields and part headers on top of the file


def check_site(gw, request) -> None:
    """Forbidden unless Host is one of the gateway's names and Origin (when sent) is the gateway or allowed.

    Applies to state-changing methods and WebSocket upgrades; reads are answered to anyone who may read.
    """
    rules = gw.host_rules
    host = request.headers.get("Host")
    if not rules.host_allowed(host):
        raise Forbidden(f"Host {host!r} is not one of this gateway's names; add it to allowed_hosts "
                        "(GATEWAY_ALLOWED_HOSTS) if it should be")
    origin = request.headers.get("Origin")
    if not rules.origin_allowed(host, origin, request.protocol):
        raise Forbidden(f"requests from the page at {origin!r} are refused; add it to allowed_origins "
                        "(GATEWAY_ALLOWED_ORIGINS) if it should be allowed")


def presented_token(handler) -> str | None:
    """The token a request carries: 'Authorization: Bearer X', then ?api_key=X, then the admin-page cookie
    (under /comfy/ also the editor's sign-in cookie).

    A token that cannot be one (non-ASCII, spaces, too long) raises Unauthorized.
    """
    header = handler.request.headers.get("Authorization")
    token = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
            if not well_formed(token):
                raise Unauthorized("the Bearer token is malformed (tokens are printable ASCII)")
    if token is None:
        token = handler.get_query_argument("api_key", None)
        if token is not None and not well_formed(token):
            raise Unauthorized("the api_key is malformed (tokens are printable ASCII)")
    if token is None:
        cookie = handler.get_cookie(cookie_name(handler))
        if cookie is None and handler.request.path.startswith(EDITOR_PREFIX):
            # The editor cannot add a header to its own requests: its sign-in cookie stands for the key.
            cookie = handler.get_cookie(EDITOR_COOKIE)
        token = cookie if well_formed(cookie) else None
    return token


def cookie_name(handler) -> str:
    """The admin page's cookie, per port: cookies ignore ports, and two gateways may share a host."""
    return f"{COOKIE}_{handler.application.settings['gateway'].port}"


def key_scope(settings, token: str | None) -> bool:
    """True when the request may use the API: no API keys are set, or it carries one (or the admin token)."""
    if not settings.api_keys:
        return True
    allowed = settings.api_keys + ((settings.admin_token,) if settings.admin_token else ())
    return token_matches(token, allowed)


def admin_scope(settings, token: str | None) -> bool:
    """True when the request may change workers, settings or the whole queue: no admin token is set (then
    an API key suffices when keys are set), or it carries the admin token."""
    if not settings.admin_token:
        return key_scope(settings, token)
    return token_matches(token, (settings.admin_token,))


def require_admin(settings, token: str | None, what: str) -> None:
    """Unauthorized unless the request has admin scope."""
    if not admin_scope(settings, token):
        raise Unauthorized(f"{what} needs the admin token (Authorization: Bearer ...)")


def declared_length(request) -> int | None:
    """The body length from Content-Length (None when chunked or absent); PayloadTooLarge when absurd."""
    raw = request.headers.get("Content-Length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise PayloadTooLarge("Content-Length is not a number") from None


def has_body(request) -> bool:
    """True when a body follows the head (a length above 0, or chunked)."""
    length = declared_length(request)
    return bool(length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def check_size(request, limit: int, what: str) -> None:
    """PayloadTooLarge when the declared length is over the limit (checked before any byte is read)."""
    length = declared_length(request)
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the {what} is {length} bytes; at most {limit} are accepted",
                              extra={"limit": limit})


def check_json_type(request) -> None:
    """UnsupportedMediaType unless a body is declared as application/json (so browsers must preflight)."""
    if not has_body(request):
        return
    kind = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise UnsupportedMediaType("the request body must be sent as Content-Type: application/json",
                                   extra={"field": "Content-Type"})


def cors_headers(gw, request) -> dict[str, Any]:
    """CORS answer headers for a page on one of allowed_origins (the gateway's own page needs none)."""
    origin = request.headers.get("Origin")
    if not origin or origin.strip().rstrip("/").lower() not in gw.host_rules.origins:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS"}


MAX_JSON_DEPTH = 64  # ComfyUI workflows (with the editor's own workflow in extra_pnginfo) nest under 15


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when lists/objects nest deeper than limit (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def load_json(raw: bytes) -> Any:
    """Parse a body; ValueError (with a reason) for invalid JSON or nesting deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8") from None
    # Only a body with many brackets can be deep: counting them is far cheaper than walking the value.
    if isinstance(value, (dict, list)) and raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH \
            and too_deep(value):
        raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def apply_forwarded(gw, request) -> None:
    """Take the client address and scheme from X-Forwarded-*/X-Real-IP, only from a trusted proxy."""
    networks = gw.trusted_networks
    if not networks:
        return
    client, scheme = forwarded_client(request.headers, request.remote_ip, networks)
    request.remote_ip = client
    if scheme:
        request.protocol = scheme
