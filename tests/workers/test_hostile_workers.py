"""A worker that answers garbage gets 502/504 with bounded memory: raw hostile servers against the worker
connections, and one in front of a real simulator behind the real gateway."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.errors import WorkerBadAnswer, WorkerTimeout
from gateway.workers import connections as worker_connections
from tests.raw_servers import Dripping, RawServer, RawWorker, open_fds


class Endless(RawServer):
    """Answers a head, then streams `piece` forever (until the client gives up); counts what it sent."""

    def __init__(self, head: bytes, piece: bytes):
        self.head, self.piece, self.sent = head, piece, 0
        self.release = asyncio.Event()

    async def _serve(self, reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        try:
            writer.write(self.head)
            while not self.release.is_set() and self.sent < 512 * 1024 * 1024:
                writer.write(self.piece)
                self.sent += len(self.piece)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()


async def _request(url: str, timeout: float = 5):
    return await worker_connections.request(None, url, "POST", "/prompt", headers={}, body=b"{}", timeout=timeout,
                                            worker_name="hostile")


@pytest.mark.parametrize("answer", [
    "HTTP/1.1 200 OK\r\nContent-Length: ²\r\n\r\n{}".encode(),
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n",
], ids=["superscript-length", "negative-length", "overflowing-length", "two-lengths", "length-and-chunked",
        "four-digit-status", "upgrade", "too-many-headers"])
async def test_bogus_framing_is_a_bad_answer(answer):
    async with RawWorker(answer) as worker:
        before = open_fds()
        with pytest.raises(WorkerBadAnswer):
            await _request(worker.url)
        await asyncio.sleep(0.05)  # the server's side of the connection closes too
        assert open_fds() <= before, "the gateway's socket is closed"


@pytest.mark.parametrize("head, piece", [
    (b"HTTP/1.1 200 OK\r\nX-Huge: ", b"a" * 65536),  # a header that never ends
    (b"HTTP/1.1 200 OK\r\n", b"X-Many: yes\r\n" * 4000),  # headers that never end
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: ", b"t" * 65536),  # trailer
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=", b"e" * 65536),  # chunk extension
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"10000\r\n" + b"c" * 65536 + b"\r\n"),  # chunks
], ids=["endless-header", "endless-headers", "endless-trailer", "endless-chunk-extension", "endless-chunks"])
async def test_endless_answers_are_cut_off_early(head, piece, monkeypatch):
    monkeypatch.setattr(worker_connections, "MAX_BODY", 4 * 1024 * 1024)
    async with Endless(head, piece) as worker:
        with pytest.raises(WorkerBadAnswer):
            await _request(worker.url, timeout=20)
        # Cut off within a few reads of the bound, not after everything the worker would send.
        assert worker.sent < 16 * 1024 * 1024, worker.sent


async def test_a_slowloris_worker_times_out_within_the_request_time():
    async with Dripping(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: 1\r\n" * 100) as worker:
        started = asyncio.get_running_loop().time()
        with pytest.raises(WorkerTimeout):
            await _request(worker.url, timeout=1.0)
        assert asyncio.get_running_loop().time() - started < 3


class HostileFront(RawServer):
    """In front of a real simulator: GET /view is answered with `answer` (then `then`), everything else is
    passed through byte for byte (health checks, the monitor's WebSocket, HEAD /view, submissions), one
    request per connection (WebSockets aside)."""

    def __init__(self, backend_port: int, answer: bytes, drip: bool = False):
        self.backend_port, self.answer, self.drip = backend_port, answer, drip
        self.release = asyncio.Event()

    async def _serve(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        if head.startswith(b"GET /view"):
            try:
                for index in range(0, len(self.answer), 1 if self.drip else len(self.answer)):
                    writer.write(self.answer[index:index + (1 if self.drip else len(self.answer))])
                    await writer.drain()
                    if self.drip:
                        await asyncio.sleep(0.05)
                await self.release.wait()
            except ConnectionError:
                pass
            writer.close()
            return
        back_reader, back_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        if b"upgrade: websocket" not in head.lower():
            # One request per connection: the gateway keeps connections to workers, and a GET /view sent
            # on one that was passed through would reach the simulator instead of this hostile answer.
            lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
            head = b"\r\n".join(lines[:1] + [b"Connection: close"] + lines[1:])
        back_writer.write(head)

        async def pipe(source, target):
            try:
                while data := await source.read(65536):
                    target.write(data)
                    await target.drain()
            except ConnectionError:
                pass
            finally:
                target.close()

        await asyncio.gather(pipe(reader, back_writer), pipe(back_reader, writer))


@pytest.mark.parametrize("answer, drip, status", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\n", False, 502),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"b" * (200 * 1024), False, 502),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Drip: 1\r\n" * 200, True, 504),
], ids=["bogus-length", "huge-head", "slowloris"])
async def test_the_gateway_answers_502_or_504_for_a_hostile_worker(start_gateway, fake_comfy_factory,
                                                                   answer, drip, status):
    from tests.conftest import register_online
    sim = await fake_comfy_factory()
    (sim.output_dir / "hostile.png").write_bytes(b"\x89PNG" + b"\0" * 64)
    port = int(sim.url.rsplit(":", 1)[1])
    async with HostileFront(port, answer, drip) as front:
        gw = await start_gateway({"WORKER_REQUEST_TIMEOUT": "2"})
        await register_online(gw, front)  # the gateway knows the worker only by the hostile front's address
        before = gw.rss_kb()
        async with aiohttp.ClientSession() as session:
            async with session.get(gw.url + "/view?filename=hostile.png&type=output") as response:
                body = await response.json()
                assert response.status == status, body
                assert body["error"]["type"] in ("worker_bad_answer", "worker_timeout")
            async with session.get(gw.url + "/healthz") as response:
                assert response.status == 200, "the gateway is fine"
        assert gw.rss_kb() - before < 32 * 1024
