"""A web page in the user's browser cannot drive the gateway: Host, Origin and Content-Type are checked
before anything changes (real gateway process, real HTTP)."""

from __future__ import annotations

import aiohttp
import pytest

WORKER = {"url": "http://127.0.0.1:9", "name": "never-registered"}


async def _post(session, url, host=None, origin=None, body=None, content_type="application/json"):
    headers = {"Content-Type": content_type}
    if host:
        headers["Host"] = host
    if origin:
        headers["Origin"] = origin
    data = body if isinstance(body, bytes) else __import__("json").dumps(body or WORKER).encode()
    async with session.post(url + "/api/workers", data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_changes_need_the_gateways_own_host_and_origin(start_gateway):
    gw = await start_gateway()
    port = gw.port
    async with aiohttp.ClientSession() as session:
        # Names a DNS-rebinding page or a confused client would send: none is this gateway's.
        for host in ("evil.example", f"evil.example:{port}", f"localhost.:{port}", f"0.0.0.0:{port}",
                     f"[::ffff:127.0.0.1]:{port}", f"127.0.0.1.nip.io:{port}"):
            status, body = await _post(session, gw.url, host=host)
            assert status == 403 and body["error"]["type"] == "forbidden", (host, status, body)
            assert "allowed_hosts" in body["error"]["message"]
        # The right Host, but a page of another site (or a sandboxed frame) sent it.
        for origin in ("http://evil.example", f"http://localhost:{port + 1}", "null", f"https://127.0.0.1:{port}"):
            status, body = await _post(session, gw.url, host=f"127.0.0.1:{port}", origin=origin)
            assert status == 403 and body["error"]["type"] == "forbidden", (origin, status, body)
        # A form post needs no preflight: the gateway's own routes want JSON, so browsers must preflight.
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            status, body = await _post(session, gw.url, content_type=kind,
                                       body=b'{"url": "http://127.0.0.1:9", "name": "x"}')
            assert status == 415 and body["error"]["field"] == "Content-Type", (kind, status, body)
        # Reads stay open to anyone who may read; nothing was registered by the refused requests.
        async with session.get(gw.url + "/api/workers", headers={"Host": "evil.example"}) as response:
            assert response.status == 200 and await response.json() == []
        # The gateway's own page (same origin) and clients without Origin are served.
        status, body = await _post(session, gw.url, origin=f"http://127.0.0.1:{port}")
        assert status == 201, body
        status, body = await _post(session, gw.url, host=f"localhost:{port}",
                                   body={"url": "http://127.0.0.1:10", "name": "second"})
        assert status == 201, body


async def test_websocket_upgrades_are_checked_too(start_gateway):
    gw = await start_gateway()
    async with aiohttp.ClientSession() as session:
        for path in ("/ws?clientId=abc", "/api/events"):
            for headers in ({"Origin": "http://evil.example"}, {"Host": "rebound.example"}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(gw.url + path, headers=headers)
                assert refused.value.status == 403, (path, headers)
            async with session.ws_connect(gw.url + path, origin=gw.url) as ws:
                assert (await ws.receive_json(timeout=5)) is not None


async def test_allowed_hosts_and_origins_extend_the_gateways_names(start_gateway):
    gw = await start_gateway({"GATEWAY_ALLOWED_HOSTS": "gateway.studio.test",
                              "GATEWAY_ALLOWED_ORIGINS": "http://editor.studio.test:8188"})
    async with aiohttp.ClientSession() as session:
        status, body = await _post(session, gw.url, host="gateway.studio.test",
                                   origin="http://editor.studio.test:8188")
        assert status == 201, body
        # A preflight from the allowed origin gets CORS headers; others get none.
        async with session.options(gw.url + "/api/workers", headers={
                "Origin": "http://editor.studio.test:8188", "Access-Control-Request-Method": "POST"}) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "http://editor.studio.test:8188"
        async with session.options(gw.url + "/api/workers", headers={"Origin": "http://evil.example"}) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
        status, _ = await _post(session, gw.url, host="other.studio.test",
                                body={"url": "http://127.0.0.1:11", "name": "third"})
        assert status == 403
