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

from ..errors import WorkerTimeout, WorkerUnavailable
from .connections import Answer, plain_http

try:
    import fcntl
except ImportError:  # Windows: the ordinary streaming path is used there
    fcntl = None

SUPPORTED = sys.platform.startswith("linux") and hasattr(os, "splice") and fcntl is not None
PIPE_SIZE = 1024 * 1024  # the default pipe (64 kB) would take 16 wake-ups per MB instead of one
F_SETPIPE_SZ = 1031  # from <fcntl.h>; Python's fcntl module names it only on newer versions
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
# A client connected but reading nothing this long is cut off, so it cannot hold a worker connection.
CLIENT_IDLE_SECONDS = 300.0


def usable_for(base_url: str) -> bool:
    """True when downloads from this worker can be spliced (plain http on Linux)."""
    return SUPPORTED and plain_http(base_url)


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


async def splice(download: Answer, client: socket.socket, idle_timeout: float) -> int:
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
