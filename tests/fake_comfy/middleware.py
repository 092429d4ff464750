"""aiohttp middlewares of the fake server.

Order (outermost first): fault injection (``hang_http``), HTTP Basic auth (as a
reverse proxy in front would do), ``garbage_http``, ComfyUI's origin-only
check (§1.3) and the bare 404 for unknown paths.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import urllib.parse

from aiohttp import web

log = logging.getLogger(__name__)

GARBAGE = b"<html><body>502 Bad Gateway?! \x00\xff not json</body></html>"


def _is_loopback(hostname) -> bool:
    if not hostname:
        return False
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_rejected(headers) -> bool:
    """True when ComfyUI's default origin-only middleware would answer 403."""
    if "Host" not in headers or "Origin" not in headers:
        return False
    host_domain = headers["Host"].lower()
    parsed = urllib.parse.urlparse(headers["Origin"])
    origin_domain = parsed.netloc.lower()
    host_parsed = urllib.parse.urlsplit("//" + host_domain)
    try:
        origin_port, host_port = parsed.port, host_parsed.port
    except ValueError:
        return False
    loopback = _is_loopback(host_parsed.hostname)
    if origin_port is None:
        host_domain = host_parsed.hostname
    if host_port is None:
        origin_domain = parsed.hostname
    if loopback and host_domain and origin_domain:
        return host_domain != origin_domain
    return False


def auth_ok(header: str, auth) -> bool:
    """Check an ``Authorization: Basic ...`` header against ``(user, password)``."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    return (user, password) == (auth[0], auth[1])


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ico", ".gif", ".svg", ".webp", ".bmp", ".avif")


def cache_headers(path: str, status: int, headers) -> None:
    """ComfyUI's cache_control middleware (§1.3): decided by the path alone."""
    last = path.rsplit("/", 1)[-1]
    if path.endswith((".js", ".css")) or (last.startswith("index") and last.endswith(".json")):
        headers.setdefault("Cache-Control", "no-cache")
    elif path.lower().endswith(IMAGE_SUFFIXES):
        if status in (200, 201, 202, 203, 204, 206, 301, 308):
            headers.setdefault("Cache-Control", "public, max-age=86400")
        elif status == 404:
            headers.setdefault("Cache-Control", "public, max-age=3600")
        elif status in (302, 303, 307):
            headers.setdefault("Cache-Control", "no-cache")


def build_middlewares(sim):
    """Middlewares closing over the simulator's live flags."""

    @web.middleware
    async def fault_middleware(request, handler):
        sim.requests.append((request.method, request.path_qs, dict(request.headers)))
        if sim.hang_http:
            log.debug("hanging %s %s", request.method, request.path)
            task = asyncio.current_task()
            sim.hanging.add(task)
            try:
                await sim.hang_released().wait()  # until hang_http is set back to False
            finally:
                sim.hanging.discard(task)
        return await handler(request)

    @web.middleware
    async def auth_middleware(request, handler):
        if sim.auth is not None and not auth_ok(request.headers.get("Authorization", ""), sim.auth):
            return web.Response(status=401, text="401 Authorization Required",
                                headers={"WWW-Authenticate": 'Basic realm="comfyui"'})
        return await handler(request)

    @web.middleware
    async def garbage_middleware(request, handler):
        if sim.garbage_http:
            return web.Response(status=200, body=GARBAGE, content_type="text/html")
        return await handler(request)

    @web.middleware
    async def origin_middleware(request, handler):
        if origin_rejected(request.headers):
            log.warning("origin check failed: Host %s, Origin %s",
                        request.headers.get("Host"), request.headers.get("Origin"))
            return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        try:
            return await handler(request)
        except web.HTTPNotFound as ex:
            if ex.text and not ex.text.startswith("404"):
                raise
            return web.Response(status=404, body=b"", content_type="application/octet-stream")

    @web.middleware
    async def cache_control_middleware(request, handler):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            cache_headers(request.path, exc.status, exc.headers)
            raise
        cache_headers(request.path, response.status, response.headers)
        return response

    return [cache_control_middleware, fault_middleware, auth_middleware, garbage_middleware, origin_middleware]
