"""Large /view downloads from workers: whole, in ranges, behind Basic auth, and when either end goes away."""

from __future__ import annotations

import asyncio
import base64
import logging
import os

import aiohttp
import pytest

from gateway.workers import zero_copy
from tests.raw_servers import open_fds

MB = 1024 * 1024


def put_file(sim, name: str, size: int) -> bytes:
    data = os.urandom(size)
    (sim.output_dir / name).write_bytes(data)
    return data


def view_query(name: str) -> dict:
    return {"filename": name, "subfolder": "", "type": "output"}


async def test_large_files_come_whole_and_in_ranges_from_a_worker_behind_basic_auth(cluster, caplog):
    caplog.set_level(logging.DEBUG)
    sim = await cluster.add_sim(auth=("studio", "s3cret-pass"),
                                worker={"auth_username": "studio", "auth_password": "s3cret-pass"})
    await cluster.wait_online()
    big = put_file(sim, "big.bin", 12 * MB + 123)
    small = put_file(sim, "small.bin", 200 * 1024)
    async with aiohttp.ClientSession() as session:
        async with session.get(cluster.url + "/view", params=view_query("big.bin")) as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(len(big))
            assert r.headers["Content-Type"] == "application/octet-stream"
            assert r.headers["Content-Disposition"] == 'filename="big.bin"'
            if zero_copy.usable_for(sim.url):
                assert r.headers["Connection"] == "close", "a spliced download ends its connection"
            assert await r.read() == big
        for header, status, expected in (("bytes=1000-5000999", 206, big[1000:5001000]),
                                         ("bytes=-2000000", 206, big[-2000000:]),
                                         ("bytes=0-", 206, big)):
            async with session.get(cluster.url + "/api/view", params=view_query("big.bin"),
                                   headers={"Range": header}) as r:
                assert r.status == status, header
                assert r.headers["Content-Range"].endswith(f"/{len(big)}")
                assert await r.read() == expected, header
            etag = r.headers["ETag"]
        async with session.get(cluster.url + "/view", params=view_query("big.bin"),
                               headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and await r.read() == b"", "a conditional request answers without a body"
        async with session.get(cluster.url + "/view", params=view_query("small.bin")) as r:
            assert r.status == 200 and await r.read() == small
            assert r.headers.get("Connection", "").lower() != "close", "small answers keep the connection"
        async with session.get(cluster.url + "/view", params=view_query("missing.bin")) as r:
            assert r.status == 404
    token = base64.b64encode(b"studio:s3cret-pass").decode()
    assert "s3cret" not in caplog.text and token not in caplog.text, "the worker's password is never logged"


async def test_clients_that_leave_mid_download_leave_nothing_behind(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    data = put_file(sim, "leave.bin", 40 * MB)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(cluster.url + "/view", params=view_query("leave.bin")) as r:
            assert await r.read() == data  # warm-up: the gateway learns where the file is
        before = open_fds()
        for _ in range(5):
            async with session.get(cluster.url + "/view", params=view_query("leave.bin")) as r:
                assert r.status == 200
                await r.content.readexactly(MB)
                r.close()  # hang up with 39 MB still to come
        for _ in range(100):
            if open_fds() <= before:
                break
            await asyncio.sleep(0.05)
        assert open_fds() <= before, "sockets and pipes of abandoned downloads are closed"
        async with session.get(cluster.url + "/view", params=view_query("leave.bin")) as r:
            assert await r.read() == data


async def test_a_worker_that_dies_mid_download_ends_the_download_instead_of_hanging(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    put_file(sim, "doomed.bin", 256 * MB)
    async with aiohttp.ClientSession() as session:
        async with session.get(cluster.url + "/view", params=view_query("doomed.bin")) as r:
            assert r.status == 200
            await r.content.readexactly(MB)
            await sim.crash()
            with pytest.raises(aiohttp.ClientPayloadError):
                await asyncio.wait_for(r.read(), 20)
    status, _ = await cluster.request("GET", "/healthz")
    assert status == 200


@pytest.mark.parametrize("size", [100 * 1024, 3 * MB], ids=["small", "large"])
async def test_a_file_that_moved_to_another_worker_is_found_there(cluster, size):
    first = await cluster.add_sim()
    second = await cluster.add_sim()
    await cluster.wait_online()
    old = put_file(first, "moving.bin", size)
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # found by asking the workers, then straight from what the gateway remembers
            async with session.get(cluster.url + "/view", params=view_query("moving.bin")) as r:
                assert r.status == 200 and await r.read() == old
        (first.output_dir / "moving.bin").unlink()
        new = put_file(second, "moving.bin", size)
        async with session.get(cluster.url + "/view", params=view_query("moving.bin")) as r:
            assert r.status == 200, "a stale record is not a 404"
            assert await r.read() == new
        (second.output_dir / "moving.bin").unlink()
        async with session.get(cluster.url + "/view", params=view_query("moving.bin")) as r:
            assert r.status == 404


async def test_a_worker_registered_by_host_name_serves_large_files(cluster):
    sim = await cluster.add_sim(register=False)
    answer = await cluster.post("/api/workers", {"url": f"http://localhost:{sim.port}", "name": "by-name"})
    assert answer.get("id"), answer
    await cluster.wait_online()
    data = put_file(sim, "named.bin", 5 * MB)
    async with aiohttp.ClientSession() as session:
        async with session.get(cluster.url + "/view", params=view_query("named.bin")) as r:
            assert r.status == 200 and await r.read() == data


async def test_downloads_from_one_worker_reuse_its_connection(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    data = put_file(sim, "again.bin", 4 * MB)
    key = ("127.0.0.1", sim.port)
    pool = cluster.gateway.idle_connections
    kept = []
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(cluster.url + "/view", params=view_query("again.bin")) as r:
                assert await r.read() == data
            sock = pool.take(key)
            assert sock is not None, "the worker connection is kept after a whole download"
            kept.append(sock)
            pool.give(key, sock)
    assert kept[0] is kept[1] is kept[2], "and carries the next download"
