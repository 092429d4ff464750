"""gateway.worker_connections (kept raw HTTP/1.1 connections to workers) against raw TCP servers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.errors import WorkerBadAnswer, WorkerTimeout, WorkerUnavailable
from gateway.workers import connections as worker_connections
from tests.harness import free_port
from tests.raw_servers import Dripping, OneAnswerPerConnection, RawWorker, Recorder, open_fds


async def test_an_answer_that_is_not_http_is_a_bad_answer_and_leaves_no_socket():
    async with RawWorker(b"SSH-2.0-OpenSSH\r\n\r\n") as worker:
        before = open_fds()
        with pytest.raises(WorkerBadAnswer):
            await worker_connections.open_answer(None, worker.url, "GET", "/view", {"filename": "x"}, {}, None, 5,
                                                 "raw")
        assert open_fds() == before


async def test_a_body_cut_short_is_an_error_not_a_short_file():
    async with RawWorker(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789") as worker:
        download = await worker_connections.open_answer(None, worker.url, "GET", "/view", {}, {}, None, 5, "raw")
        try:
            assert (download.status, download.length, download.early) == (200, 1000, b"0123456789")
            with pytest.raises(WorkerUnavailable):
                await worker_connections.read_rest(download, 5)
        finally:
            download.close()


async def test_a_connection_read_to_its_end_carries_the_next_download():
    pool = worker_connections.IdleConnections()
    async with RawWorker(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", then="stall") as worker:
        download = await worker_connections.open_answer(pool, worker.url, "GET", "/view", {}, {}, None, 5, "raw")
        assert await worker_connections.read_rest(download, 5) == b"hello"
        first = download.sock
        download.close()
        download.close()  # twice: still kept once
        assert pool.take(download.key) is first, "kept for the next download"
        assert pool.take(download.key) is None
        pool.give(download.key, first)
    pool.close_all()
    assert first.fileno() == -1, "closed with the pool"
    spare = socket.socket()
    pool.give(download.key, spare)
    assert spare.fileno() == -1, "a pool that was closed keeps nothing"


async def test_the_pool_keeps_few_connections_and_none_for_long(monkeypatch):
    pool = worker_connections.IdleConnections()
    socks = [socket.socket() for _ in range(worker_connections.IDLE_PER_WORKER + 2)]
    for sock in socks:
        pool.give(("h", 1), sock)
    assert [s.fileno() == -1 for s in socks] == [True, True] + [False] * worker_connections.IDLE_PER_WORKER, \
        "the oldest make room"
    monkeypatch.setattr(worker_connections, "IDLE_SECONDS", 0.0)
    late = socket.socket()
    pool.give(("other", 2), late)  # any return sweeps out what idled too long, for every worker
    assert all(s.fileno() == -1 for s in socks)
    pool.close_all()


async def test_a_kept_connection_the_worker_dropped_is_replaced_by_a_new_one():
    pool = worker_connections.IdleConnections()
    async with OneAnswerPerConnection(b"x" * 100) as worker:
        for _ in range(3):
            download = await worker_connections.open_answer(pool, worker.url, "GET", "/view", {}, {}, None, 5, "raw")
            assert await worker_connections.read_rest(download, 5) == b"x" * 100
            download.close()
        assert worker.connections == 3, "each dropped connection was noticed and replaced"
    pool.close_all()


async def test_an_answer_not_read_to_its_end_closes_its_connection():
    async with RawWorker(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"y" * 1000, then="stall") as worker:
        pool = worker_connections.IdleConnections()
        download = await worker_connections.open_answer(pool, worker.url, "GET", "/view", {}, {}, None, 5, "raw")
        download.close()  # e.g. a 404 answered by another path, or an error half way
        assert pool.take(download.key) is None
        assert download.sock.fileno() == -1


async def test_a_post_carries_its_body_and_headers_and_reads_a_sized_answer():
    async with Recorder(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n'
                        b'{"number": 1.0}\n') as worker:
        status, headers, body = await worker_connections.request(
            None, worker.url + "/base", "POST", "/prompt", headers={"Authorization": "Basic eDp5"},
            body=b'{"prompt": {}}', timeout=5, worker_name="raw")
    assert (status, headers["Content-Type"], body) == (200, "application/json", b'{"number": 1.0}\n')
    head, _, sent = worker.request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /base/prompt HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Basic eDp5" in head and b"\r\nContent-Length: 14" in head
    assert sent == b'{"prompt": {}}'


@pytest.mark.parametrize("answer, expected", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
     b"hello, world"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", b"abc"),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", b"until the end"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
], ids=["chunked", "chunked-with-trailer", "until-close", "no-content"])
async def test_answers_framed_every_way_are_read_whole(answer, expected):
    async with RawWorker(answer) as worker:
        status, _, body = await worker_connections.request(None, worker.url, "GET", "/x", headers={}, body=None,
                                                           timeout=5, worker_name="raw")
    assert body == expected


async def test_a_malformed_chunked_answer_is_a_bad_answer():
    async with RawWorker(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n") as worker:
        with pytest.raises(WorkerBadAnswer):
            await worker_connections.request(None, worker.url, "GET", "/x", headers={}, body=None, timeout=5,
                                             worker_name="raw")


async def test_an_unreachable_worker_is_unavailable_quickly():
    port = free_port()  # nothing listens there
    with pytest.raises(WorkerUnavailable):
        await worker_connections.request(None, f"http://127.0.0.1:{port}", "POST", "/prompt", headers={}, body=b"{}",
                                         timeout=5, worker_name="raw")


async def test_the_timeout_bounds_the_whole_request_not_each_read():
    async with Dripping(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"z" * 40) as worker:
        started = asyncio.get_running_loop().time()
        with pytest.raises(WorkerTimeout):
            await worker_connections.request(None, worker.url, "POST", "/prompt", headers={}, body=b"{}",
                                             timeout=1.0, worker_name="raw")
        assert asyncio.get_running_loop().time() - started < 2.5


@pytest.mark.parametrize("answer, expected", [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
], ids=["interim-100"])
async def test_unusual_but_valid_heads_are_understood(answer, expected):
    async with RawWorker(answer, then="stall") as worker:
        status, _, body = await worker_connections.request(None, worker.url, "GET", "/x", headers={}, body=None,
                                                           timeout=5, worker_name="raw")
    assert (status, body) == (200, expected)


@pytest.mark.parametrize("chunks", [b"-5\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n",
                                    b"0x5\r\nhello\r\n0\r\n\r\n"],
                         ids=["negative", "no-crlf-after-data", "0x-prefix"])
async def test_broken_chunk_framing_is_a_bad_answer(chunks):
    async with RawWorker(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks, then="stall") as worker:
        with pytest.raises(WorkerBadAnswer):
            await worker_connections.request(None, worker.url, "GET", "/x", headers={}, body=None, timeout=5,
                                             worker_name="raw")
