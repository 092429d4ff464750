"""gateway.zero_copy (splice) against raw TCP servers and socket pairs."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.errors import WorkerTimeout
from gateway.workers import connections as worker_connections
from gateway.workers import zero_copy
from tests.raw_servers import RawWorker

pytestmark = pytest.mark.skipif(not zero_copy.SUPPORTED, reason="splice(2) is Linux only")


async def test_a_worker_that_stalls_mid_body_times_out():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n"
    async with RawWorker(head + b"x" * 100000, then="stall") as worker:
        download = await worker_connections.open_answer(None, worker.url, "GET", "/view", {}, {}, None, 5, "raw")
        left, right = socket.socketpair()
        left.setblocking(False)
        reading = asyncio.get_running_loop().run_in_executor(None, _read_all, right)
        try:
            with pytest.raises(WorkerTimeout):
                await zero_copy.splice(download, left, idle_timeout=0.5)
        finally:
            download.close()
            left.close()
        assert await reading == 100000 - len(download.early)


async def test_a_client_that_stops_reading_is_cut_off(monkeypatch):
    monkeypatch.setattr(zero_copy, "CLIENT_IDLE_SECONDS", 0.5)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n"
    async with RawWorker(head + b"x" * 50000000) as worker:
        download = await worker_connections.open_answer(None, worker.url, "GET", "/view", {}, {}, None, 5, "raw")
        left, right = socket.socketpair()  # nobody reads `right`
        left.setblocking(False)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(zero_copy.splice(download, left, idle_timeout=5), 10)
        finally:
            download.close()
            left.close()
            right.close()


def _read_all(sock: socket.socket) -> int:
    total = 0
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return total
        total += len(data)
