"""WebSockets: a page that stops reading /api/events is dropped quietly, a connected clientId is taken over
only with the same API key, and inbound messages are at most 1 MB (real gateway, real sockets)."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import pytest

from tests.harness import Cluster


async def _events_socket_that_never_reads(url: str) -> socket.socket:
    host, port = url.split("//", 1)[1].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    await loop.sock_sendall(sock, (f"GET /api/events HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


async def test_a_page_that_stops_reading_events_is_dropped_without_a_traceback(cluster, monkeypatch, caplog):
    import gateway.handlers.base as handler_base
    monkeypatch.setattr(handler_base, "CLIENT_BUFFER_LIMIT", 1024 * 1024)
    events = cluster.gateway.events
    sock = await _events_socket_that_never_reads(cluster.url)
    try:
        for _ in range(100):
            if events._admin_listeners:
                break
            await asyncio.sleep(0.02)
        assert len(events._admin_listeners) == 1
        big = {"note": "x" * 100_000}
        for _ in range(400):  # 40 MB of events at a page that reads nothing
            events._emit("summary", big)
            if not events._admin_listeners:
                break
        assert not events._admin_listeners, "dropped once its backlog passed the limit"
        for _ in range(200):  # and later events (of a closed socket) raise nothing
            events._emit("summary", big)
    finally:
        sock.close()
    await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
    assert any("too slow" in r.getMessage() for r in caplog.records)


async def test_a_client_id_is_taken_over_only_with_the_same_key(tmp_path):
    cluster = Cluster(tmp_path / "gw", GATEWAY_API_KEYS="key-a,key-b")
    await cluster.start()
    try:
        ws = cluster.url.replace("http", "ws") + "/ws?clientId=studio-1"
        first = await cluster.session.ws_connect(ws, headers={"Authorization": "Bearer key-a"})
        assert (await first.receive_json(timeout=5))["data"]["sid"] == "studio-1"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await cluster.session.ws_connect(ws, headers={"Authorization": "Bearer key-b"})
        assert refused.value.status == 409
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await cluster.session.ws_connect(ws)
        assert refused.value.status == 401
        second = await cluster.session.ws_connect(ws, headers={"Authorization": "Bearer key-a"})
        assert (await second.receive_json(timeout=5))["data"]["sid"] == "studio-1"
        assert cluster.gateway.hub.get("studio-1").key == "key-a"
        await first.close()
        await second.close()
        # Once the id is free, another key may use it.
        for _ in range(100):
            if cluster.gateway.hub.get("studio-1") is None:
                break
            await asyncio.sleep(0.02)
        third = await cluster.session.ws_connect(ws, headers={"Authorization": "Bearer key-b"})
        await third.close()
    finally:
        await cluster.stop()


async def test_inbound_messages_are_at_most_one_megabyte(cluster):
    async with cluster.session.ws_connect(cluster.url.replace("http", "ws") + "/ws") as ws:
        await ws.receive_json(timeout=5)
        await ws.send_str("x" * 100_000)  # fine: ignored like any message that is not feature_flags JSON
        await ws.send_str("x" * (2 * 1024 * 1024))
        message = await ws.receive(timeout=5)
        while message.type == aiohttp.WSMsgType.TEXT:
            message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        assert ws.close_code == 1009  # message too big
