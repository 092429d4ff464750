"""Large /view downloads moved socket to socket by the kernel (Linux splice), not through Python.

Relaying a file through Python costs several passes over every byte (a fresh read buffer, copies
into and out of Tornado's buffers, the send) and a few callbacks per chunk; on a busy machine that
made a proxied 50 MB download well slower than a direct one. With splice(2) the bytes go from the
worker's socket into a pipe and from the pipe into the client's socket inside the kernel: the
gateway only waits for the sockets to be ready and never touches the data.

Only used where it can be: Linux, a plain-http worker, a GET whose answer is a success with a
Content-Length. Everything else (HTTPS workers, other systems, errors, chunked answers) takes the
ordinary streaming path. The client connection is closed after such a download (``Connection:
close``): the socket leaves Tornado's hands, so it cannot serve the next request.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from tornado.httputil import HTTPHeaders, HTTPInputError

from .errors import WorkerBadAnswer, WorkerTimeout, WorkerUnavailable

try:
    import fcntl
except ImportError:  # Windows: the ordinary streaming path is used there
    fcntl = None

SUPPORTED = sys.platform.startswith("linux") and hasattr(os, "splice") and fcntl is not None
PIPE_SIZE = 1024 * 1024  # the default pipe (64 kB) would take 16 wake-ups per MB instead of one
F_SETPIPE_SZ = 1031  # from <fcntl.h>; Python's fcntl module names it only on newer versions
MAX_HEAD = 64 * 1024
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
# A client connected but reading nothing this long is cut off, so it cannot hold a worker connection.
CLIENT_IDLE_SECONDS = 300.0


IDLE_PER_WORKER = 8  # kept-alive connections to one worker, for the next downloads
IDLE_SECONDS = 20.0  # well under aiohttp's 75 s keep-alive, so the worker rarely closes one first


class IdleConnections:
    """Worker connections that finished a download and can carry the next one (one set per gateway).

    A new TCP connection on loopback starts with small buffers that grow as data flows; a reused one
    has grown already (a 50 MB download on a reused connection measured about 15 % faster), and the
    connect itself is saved.
    """

    def __init__(self):
        self._idle: dict[tuple, list[tuple[socket.socket, float]]] = {}
        self.closed = False

    def take(self, key: tuple) -> socket.socket | None:
        """A live idle connection to key (the most recently used), or None."""
        conns = self._idle.get(key)
        while conns:
            sock, since = conns.pop()
            if time.monotonic() - since < IDLE_SECONDS and _still_open(sock):
                return sock
            sock.close()
        return None

    def give(self, key: tuple, sock: socket.socket) -> None:
        """Keep a connection whose last answer was read to its end (closed instead once stopped)."""
        if self.closed:
            sock.close()
            return
        self._sweep()
        conns = self._idle.setdefault(key, [])
        if len(conns) >= IDLE_PER_WORKER:
            conns.pop(0)[0].close()  # the oldest makes room
        conns.append((sock, time.monotonic()))

    def _sweep(self) -> None:
        """Close connections idle too long, for every worker (also ones no longer asked)."""
        deadline = time.monotonic() - IDLE_SECONDS
        for key, conns in list(self._idle.items()):
            while conns and conns[0][1] < deadline:
                conns.pop(0)[0].close()
            if not conns:
                del self._idle[key]

    def close_all(self) -> None:
        """Close every idle connection; later ones are closed as they come back (the gateway stops)."""
        self.closed = True
        for conns in self._idle.values():
            for sock, _ in conns:
                sock.close()
        self._idle.clear()


def _still_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) is None  # any byte or EOF: not reusable
    except BlockingIOError:
        return True  # nothing to read: open and quiet
    except OSError:
        return False


@dataclass
class Download:
    """A worker's answer whose head has been read; the body is still on the socket (after ``early``)."""

    sock: socket.socket
    status: int
    reason: str
    headers: HTTPHeaders
    early: bytes = b""  # body bytes that arrived with the head
    length: int | None = None  # Content-Length, if any
    chunked: bool = False
    key: tuple = ()  # (host, port) of the worker
    keep_alive: bool = False  # the worker did not ask to close the connection
    consumed: bool = False  # the whole answer has been read from the socket
    pool: IdleConnections | None = None  # where the connection goes back to
    done: bool = False

    @property
    def remaining(self) -> int:
        """Body bytes still on the socket (Content-Length known)."""
        return (self.length or 0) - len(self.early)

    def close(self) -> None:
        """Done with the answer: keep the connection for the next download if it was read to its end."""
        if self.done:
            return
        self.done = True
        if self.consumed and self.keep_alive and self.pool is not None:
            self.pool.give(self.key, self.sock)
        else:
            self.sock.close()


def usable_for(base_url: str) -> bool:
    """True when downloads from this worker can be spliced (plain http on Linux)."""
    return SUPPORTED and urlsplit(base_url).scheme == "http"


async def open_download(base_url: str, path: str, query: dict, headers: dict, timeout: float,
                        worker_name: str, pool: IdleConnections | None = None) -> Download:
    """Send a GET to the worker (on a kept connection if there is one) and read the answer's head."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = (host, port)
    loop = asyncio.get_running_loop()
    target = parts.path.rstrip("/") + path + ("?" + urlencode(query) if query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept-Encoding: identity"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    sock: socket.socket | None = pool.take(key) if pool is not None else None
    head = None
    try:
        if sock is not None:
            try:
                head = await _exchange(loop, sock, request, timeout)
            except _ClosedBeforeAnswer:
                sock.close()  # the worker closed the kept connection meanwhile: once more on a new one
                sock = None
        if sock is None:
            sock = await asyncio.wait_for(_connect(loop, host, port), timeout)
            head = await _exchange(loop, sock, request, timeout)
    except asyncio.TimeoutError:
        if sock is not None:
            sock.close()
        raise WorkerTimeout(f"worker {worker_name} did not answer GET {path} in time") from None
    except _TooLongHead:
        sock.close()
        raise WorkerBadAnswer(f"worker {worker_name} sent an over-long answer head to GET {path}") from None
    except (OSError, _ClosedBeforeAnswer) as exc:
        if sock is not None:
            sock.close()
        raise WorkerUnavailable(f"worker {worker_name} is unreachable: {exc}") from None
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    raw_head, early = head.split(b"\r\n\r\n", 1)
    status_line, _, header_text = raw_head.decode("latin-1").partition("\r\n")
    try:
        version, code, *reason = status_line.split(" ", 2)
        status = int(code)
        parsed = HTTPHeaders.parse(header_text)
    except (ValueError, HTTPInputError):
        sock.close()
        raise WorkerBadAnswer(f"worker {worker_name} answered GET {path} with something that is not HTTP") from None
    length = parsed.get("Content-Length")
    return Download(sock=sock, status=status, reason=reason[0] if reason else "", headers=parsed, early=early,
                    length=int(length) if length and length.isdigit() else None,
                    chunked="chunked" in parsed.get("Transfer-Encoding", "").lower(), key=key,
                    keep_alive=version == "HTTP/1.1" and "close" not in parsed.get("Connection", "").lower(),
                    consumed=status in (204, 304), pool=pool)


class _ClosedBeforeAnswer(Exception):
    """The connection ended (closed or reset) before any byte of the answer."""


class _TooLongHead(Exception):
    """The answer head is longer than MAX_HEAD."""


async def _exchange(loop: asyncio.AbstractEventLoop, sock: socket.socket, request: bytes, timeout: float) -> bytes:
    """Send the request and read the answer up to the end of its head (plus what came with it)."""
    head = b""
    try:
        await asyncio.wait_for(loop.sock_sendall(sock, request), timeout)
        while b"\r\n\r\n" not in head:
            if len(head) > MAX_HEAD:
                raise _TooLongHead()
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
            if not data:
                if not head:
                    raise _ClosedBeforeAnswer("the connection closed before the answer")
                raise ConnectionResetError("the connection closed in the middle of the answer head")
            head += data
    except (ConnectionResetError, BrokenPipeError) as exc:
        if head:
            raise
        raise _ClosedBeforeAnswer(str(exc)) from None
    return head


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking socket to host:port, trying each of its addresses in turn."""
    family, address = _literal_address(host, port)
    if address is not None:
        candidates = [(family, address)]
    else:  # a name: resolve it (in a thread, as the loop does)
        candidates = [(info[0], info[4]) for info in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    error: OSError = OSError(f"no address for {host}")
    for family, address in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error


def _literal_address(host: str, port: int) -> tuple[int, tuple | None]:
    """(family, address) when host is an IP address (no lookup needed), else (0, None)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family, (host, port) if family == socket.AF_INET else (host, port, 0, 0)
    return 0, None


async def read_rest(download: Download, timeout: float) -> bytes:
    """The whole (small) body of an answer with a Content-Length; WorkerTimeout/WorkerUnavailable."""
    loop = asyncio.get_running_loop()
    length = download.length or 0
    body = bytearray(download.early[:length])
    try:
        while len(body) < length:
            data = await asyncio.wait_for(loop.sock_recv(download.sock, min(length - len(body), 1 << 20)), timeout)
            if not data:
                raise WorkerUnavailable("the worker closed the connection before the end of the file")
            body += data
    except asyncio.TimeoutError:
        raise WorkerTimeout("the worker stopped sending the file") from None
    except OSError as exc:
        raise WorkerUnavailable(f"the worker's connection failed: {exc}") from None
    download.consumed = len(download.early) <= length  # nothing beyond the answer came with it
    return bytes(body)


def take_socket(stream) -> socket.socket:
    """Own a connection's socket outright: a duplicate of its descriptor, then Tornado's stream closed.

    Closing the stream unregisters it from the loop and closes Tornado's descriptor; the connection
    itself lives on in the duplicate.
    """
    try:
        duplicate = socket.socket(fileno=os.dup(stream.socket.fileno()))
        duplicate.setblocking(False)
    finally:
        stream.close()
    return duplicate


def hang_up(client: socket.socket) -> None:
    """End a taken connection: FIN after the last byte, then close."""
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # already gone
    client.close()


async def splice(download: Download, client: socket.socket, idle_timeout: float) -> int:
    """Move the rest of the body from the worker's socket to the client's; returns bytes moved.

    Raises OSError (the client went away, or read nothing for CLIENT_IDLE_SECONDS) or
    WorkerTimeout/WorkerUnavailable (the worker stalled for idle_timeout or closed early). Memory
    stays at one kernel pipe whatever the file size.
    """
    loop = asyncio.get_running_loop()
    source, target = download.sock.fileno(), client.fileno()
    remaining = download.remaining
    moved = 0
    pipe_read, pipe_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(pipe_write, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe still works, with more wake-ups
        while remaining > 0:
            try:
                filled = os.splice(source, pipe_write, remaining, flags=SPLICE_FLAGS)
            except BlockingIOError:
                if not await _ready(loop, source, False, idle_timeout):
                    raise WorkerTimeout("the worker stopped sending the file") from None
                continue
            if filled == 0:
                raise WorkerUnavailable("the worker closed the connection before the end of the file")
            remaining -= filled
            while filled:
                try:
                    sent = os.splice(pipe_read, target, filled, flags=SPLICE_FLAGS)
                except BlockingIOError:
                    if not await _ready(loop, target, True, CLIENT_IDLE_SECONDS):
                        raise TimeoutError(f"the client read nothing for {CLIENT_IDLE_SECONDS:.0f} s") from None
                    continue
                filled -= sent
                moved += sent
        download.consumed = True
    finally:
        os.close(pipe_read)
        os.close(pipe_write)
    return moved


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, writable: bool, timeout: float | None) -> bool:
    """Wait until fd can be read (or written); False on timeout."""
    waiter = loop.create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(True)

    if writable:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        return await asyncio.wait_for(waiter, timeout) if timeout else await waiter
    except asyncio.TimeoutError:
        return False
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
