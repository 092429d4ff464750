"""Raw TCP servers that answer like a worker, or misbehave in exact ways (for the worker-connection tests)."""

from __future__ import annotations

import asyncio
import os


def open_fds() -> int:
    """File descriptors this process holds (Linux)."""
    return len(os.listdir("/proc/self/fd"))


class RawServer:
    """A TCP server on a free loopback port for the duration of an `async with`; subclasses serve."""

    release: asyncio.Event | None = None  # set on exit, so connections held open can end

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        if self.release is not None:
            self.release.set()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        raise NotImplementedError


class RawWorker(RawServer):
    """Reads a request head and answers with fixed bytes, then stalls or hangs up."""

    def __init__(self, answer: bytes, then: str = "close"):
        self.answer, self.then = answer, then
        self.release = asyncio.Event()

    async def _serve(self, reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.answer)
        await writer.drain()
        if self.then == "stall":
            await self.release.wait()
        writer.close()


class OneAnswerPerConnection(RawServer):
    """Answers the first request of each connection (keep-alive), then drops the connection when the
    next request arrives on it, unanswered: what a worker that restarted or timed the connection out does."""

    def __init__(self, body: bytes):
        self.body = body
        self.connections = 0

    async def _serve(self, reader, writer):
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.body) + self.body)
        await writer.drain()
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            pass
        writer.close()


class Recorder(RawWorker):
    """A RawWorker that keeps the request it got (head and body)."""

    async def _serve(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        self.request = head + await reader.readexactly(length)
        writer.write(self.answer)
        await writer.drain()
        writer.close()


class Dripping(RawWorker):
    """Answers one byte at a time, slowly: each read is quick, the whole answer is not."""

    async def _serve(self, reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        try:
            for byte in self.answer:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass
        writer.close()
