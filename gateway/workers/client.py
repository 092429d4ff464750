"""HTTP client for one ComfyUI worker: Basic auth, timeouts, clear errors, streaming downloads."""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import HTTPHeaders
from tornado.simple_httpclient import HTTPTimeoutError

from ..errors import WorkerBadAnswer, WorkerTimeout, WorkerUnavailable
from . import connections as worker_connections
from .connections import IdleConnections, plain_http
from .streaming import streaming_client

logger = logging.getLogger(__name__)

# A download may take long; the connect timeout still catches a dead worker quickly.
STREAM_TIMEOUT = 6 * 3600.0


def configure_http_client(max_clients: int = 200) -> None:
    """Let many worker requests run at once; keep connections to workers alive when pycurl is there."""
    # At DEBUG, Tornado's curl client logs every request header, the workers' Basic auth among them:
    # passwords never reach a log, whatever level the gateway runs at.
    logging.getLogger("tornado.curl_httpclient").setLevel(logging.INFO)
    try:
        import pycurl  # noqa: F401  (Tornado's curl client reuses connections; the simple one cannot)
        AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient", max_clients=max_clients)
    except ImportError:
        AsyncHTTPClient.configure(None, max_clients=max_clients)


def basic_auth_header(username: str | None, password: str | None) -> str | None:
    """The Authorization header value for Basic auth, or None without a username."""
    if not username:
        return None
    token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
    return f"Basic {token}"


# Requests sent on the gateway's own kept connections (plain-http workers): job submissions, the hot
# path, and the two small reads of every health check, which with hundreds of workers kept the curl
# client's timer handling busy at idle.
RAW_ROUTES = frozenset({("POST", "/prompt"), ("GET", "/system_stats"), ("GET", "/queue")})


@dataclass
class WorkerResponse:
    """A worker's answer: status, headers and raw body."""

    status: int
    headers: HTTPHeaders
    body: bytes
    elapsed_ms: float

    def json(self) -> Any:
        """The body as JSON; WorkerBadAnswer when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise WorkerBadAnswer(f"worker answered {self.status} with a body that is not JSON") from None


class WorkerClient:
    """Talks HTTP to one worker; credentials come from a callable so settings changes apply at once."""

    def __init__(self, base_url: str, name: str, auth: Callable[[], tuple[str | None, str | None]],
                 timeout: Callable[[], float], connections: IdleConnections | None = None,
                 user_agent: str = "comfyui-gateway"):
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._auth = auth
        self._timeout = timeout
        self.user_agent = user_agent  # names the gateway instance in the worker's logs
        # Kept raw connections for the job submissions (the hot path), on plain-http workers.
        self._connections = connections if connections is not None and plain_http(self.base_url) else None
        parts = urlsplit(self.base_url)
        self.ws_base = ("wss" if parts.scheme == "https" else "ws") + "://" + parts.netloc + parts.path

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate the gateway to this worker (may be empty), and its User-Agent."""
        header = basic_auth_header(*self._auth())
        out = {"User-Agent": self.user_agent}
        if header:
            out["Authorization"] = header
        return out

    def url(self, path: str, query: dict | None = None) -> str:
        """Absolute URL of a worker path, with an optional query."""
        return self.base_url + path + (("?" + urlencode(query)) if query else "")

    def ws_url(self, client_id: str) -> str:
        """The worker's WebSocket URL for a client id."""
        return f"{self.ws_base}/ws?{urlencode({'clientId': client_id})}"

    def _request(self, method: str, path: str, query: dict | None, body: bytes | None,
                 headers: dict | None, timeout: float | None, **extra: Any) -> HTTPRequest:
        all_headers = dict(headers or {})
        all_headers.update(self.auth_headers())
        wait = timeout or self._timeout()
        return HTTPRequest(self.url(path, query), method=method, headers=all_headers, body=body,
                           connect_timeout=min(wait, 10.0), request_timeout=wait,
                           allow_nonstandard_methods=True, decompress_response=False,
                           follow_redirects=False, **extra)

    async def request(self, method: str, path: str, *, query: dict | None = None, json_body: Any = None,
                      body: bytes | None = None, headers: dict | None = None,
                      timeout: float | None = None, guard: Callable[[], bool] | None = None) -> WorkerResponse:
        """Send one request; any HTTP status is returned, transport problems raise WorkerUnavailable/Timeout.

        ``guard`` is asked right before the request goes out; False raises SendRefused (nothing sent).
        """
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers = {**(headers or {}), "Content-Type": "application/json"}
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        started = time.perf_counter()
        if self._connections is not None and (method, path) in RAW_ROUTES:
            return await self._request_raw(method, path, query, body, headers, timeout, started, guard)
        request = self._request(method, path, query, body, headers, timeout)
        if guard is not None and not guard():
            raise worker_connections.SendRefused(f"{method} {path} not sent")
        response = await self._fetch(request, method, path, started)
        return response

    async def open_answer(self, method: str, path: str, *, query: dict | None = None,
                          headers: dict | None = None) -> worker_connections.Answer:
        """Send a request on a kept raw connection and read only the answer's head; the body stays
        on the socket (for /view bodies moved by the kernel, see zero_copy). Plain-http workers."""
        return await worker_connections.open_answer(self._connections, self.base_url, method, path, query,
                                                    {**(headers or {}), **self.auth_headers()}, None,
                                                    self._timeout(), self.name)

    async def _request_raw(self, method: str, path: str, query: dict | None, body: bytes | None,
                           headers: dict | None, timeout: float | None, started: float,
                           guard: Callable[[], bool] | None) -> WorkerResponse:
        """The request on a kept connection (see worker_connections). Like curl, a kept connection
        that dies before any byte of the answer is replaced and the request sent again: the worker
        closed it while idle, so it never saw the request."""
        try:
            status, answer_headers, content = await worker_connections.request(
                self._connections, self.base_url, method, path, query=query,
                headers={**(headers or {}), **self.auth_headers()}, body=body, timeout=timeout or self._timeout(),
                worker_name=self.name, guard=guard)
        except (WorkerTimeout, WorkerUnavailable, WorkerBadAnswer) as exc:
            self._log(method, path, type(exc).__name__, started)
            raise
        self._log(method, path, status, started)
        return WorkerResponse(status, answer_headers, content, (time.perf_counter() - started) * 1000)

    async def _fetch(self, request: HTTPRequest, method: str, path: str, started: float,
                     client: AsyncHTTPClient | None = None) -> WorkerResponse:
        try:
            raw = await (client or AsyncHTTPClient()).fetch(request, raise_error=False)
        except HTTPTimeoutError:
            self._log(method, path, "timeout", started)
            raise WorkerTimeout(f"worker {self.name} did not answer {method} {path} in time") from None
        except (OSError, HTTPClientError) as exc:
            if "timed out" in str(exc).lower() or "timeout" in str(exc).lower():
                self._log(method, path, "timeout", started)
                raise WorkerTimeout(f"worker {self.name} did not answer {method} {path} in time") from None
            self._log(method, path, "unreachable", started)
            raise WorkerUnavailable(f"worker {self.name} is unreachable: {exc}") from None
        elapsed = (time.perf_counter() - started) * 1000
        if raw.code == 599:
            self._log(method, path, "599", started)
            if isinstance(raw.error, TimeoutError) or "Timeout" in type(raw.error).__name__:
                raise WorkerTimeout(f"worker {self.name} did not answer {method} {path} in time")
            raise WorkerUnavailable(f"worker {self.name} is unreachable: {raw.error}")
        self._log(method, path, raw.code, started)
        return WorkerResponse(raw.code, raw.headers, raw.body or b"", elapsed)

    def _log(self, method: str, path: str, status: Any, started: float) -> None:
        logger.debug("%s %s%s -> %s in %.1f ms", method, self.name, path, status,
                     (time.perf_counter() - started) * 1000)

    async def get_json(self, path: str, *, query: dict | None = None, timeout: float | None = None) -> Any:
        """GET a JSON route; non-2xx answers raise WorkerBadAnswer."""
        response = await self.request("GET", path, query=query, timeout=timeout)
        if response.status == 401:
            raise WorkerBadAnswer(f"worker {self.name} refused the credentials (401)", type="worker_auth_failed")
        if not 200 <= response.status < 300:
            raise WorkerBadAnswer(f"worker {self.name} answered {response.status} to GET {path}")
        return response.json()

    async def stream(self, method: str, path: str, *, query: dict | None, headers: dict | None,
                     on_headers: Callable[[int, HTTPHeaders], None],
                     on_chunk: Callable[[bytes], Awaitable[None] | None]) -> int:
        """Stream a download: on_headers once, then on_chunk per chunk (awaited, for back-pressure)."""
        started = time.perf_counter()
        status_holder: dict[str, Any] = {}

        def header_callback(line: str) -> None:
            # Tornado hands raw header lines; collect them and report once the blank line arrives.
            if line.startswith("HTTP/"):
                status_holder["code"] = int(line.split(" ", 2)[1])
                status_holder["headers"] = HTTPHeaders()
            elif line.strip():
                status_holder["headers"].parse_line(line)
            elif "code" in status_holder and not status_holder.get("sent"):
                status_holder["sent"] = True
                on_headers(status_holder["code"], status_holder["headers"])

        request = self._request(method, path, query, None, headers, STREAM_TIMEOUT,
                                header_callback=header_callback, streaming_callback=on_chunk)
        response = await self._fetch(request, method, path, started, streaming_client())
        if not status_holder.get("sent"):
            on_headers(response.status, response.headers)
        return response.status
