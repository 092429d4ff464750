"""A gateway reachable from the network makes an admin token; tokens and bulk changes; private files;
secrets never logged; X-Forwarded-* only from trusted proxies (real gateway process, real HTTP)."""

from __future__ import annotations

import json
import stat

import aiohttp

from tests.raw_servers import Recorder


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_network_bind_makes_an_admin_token_once_and_the_link_signs_in(start_gateway):
    gw = await start_gateway(host="0.0.0.0")
    token_file = gw.data_dir / "admin_token"
    token = token_file.read_text().strip()
    assert len(token) >= 32 and mode(token_file) == 0o600
    assert mode(gw.data_dir) == 0o700
    assert mode(gw.data_dir / "gateway.sqlite3") == 0o600 and mode(gw.data_dir / "logs" / "gateway.log") == 0o600
    assert gw.log_text.count(f"?token={token}") == 1, "the admin link is logged once, when the token is made"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # IP hosts too
        body = {"url": "http://127.0.0.1:9", "name": "w"}
        async with session.post(gw.url + "/api/workers", json=body) as response:
            assert response.status == 401 and (await response.json())["error"]["type"] == "unauthorized"
        async with session.post(gw.url + "/api/workers", json=body,
                                headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201
        # The admin link: the token goes into an HttpOnly, SameSite=Strict cookie, and the browser on to /.
        async with session.get(f"{gw.url}/?token={token}", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/"
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with session.patch(gw.url + "/api/workers/1", json={"name": "renamed"}) as response:
            assert response.status == 200, "the cookie now signs this browser in"
        async with session.get(f"{gw.url}/?token=not-the-token", allow_redirects=False) as response:
            assert response.status == 401
    await gw.terminate()
    again = await start_gateway(host="0.0.0.0")  # same data folder: same token, not logged again
    assert again.data_dir == gw.data_dir and token_file.read_text().strip() == token
    assert again.log_text.count(f"?token={token}") == 1


async def test_bulk_destructive_routes_need_the_admin_token_when_one_is_set(start_gateway):
    gw = await start_gateway({"GATEWAY_ADMIN_TOKEN": "the-admin-token", "GATEWAY_API_KEYS": "client-key"})
    key = {"Authorization": "Bearer client-key"}
    admin = {"Authorization": "Bearer the-admin-token"}
    bulk = [("/queue", {"clear": True}), ("/interrupt", {}), ("/history", {"clear": True}),
            ("/history", {"delete": ["x"]}), ("/free", {"unload_models": True})]
    async with aiohttp.ClientSession() as session:
        for path, body in bulk:
            async with session.post(gw.url + path, json=body, headers=key) as response:
                assert response.status == 401, (path, body)
                assert "admin token" in (await response.json())["error"]["message"]
            async with session.post(gw.url + "/api" + path, json=body, headers=admin) as response:
                assert response.status == 200, (path, body)
        # A client's own targeted calls stay a client's.
        for path, body in [("/queue", {"delete": ["x"]}), ("/interrupt", {"prompt_id": "x"})]:
            async with session.post(gw.url + path, json=body, headers=key) as response:
                assert response.status == 200, (path, body)
        async with session.post(gw.url + "/api/workers", json={"url": "http://127.0.0.1:9"},
                                headers=key) as response:
            assert response.status == 401, "registering a worker is the admin's"


async def test_loopback_without_a_token_stays_free_and_makes_none(start_gateway):
    gw = await start_gateway()
    assert not (gw.data_dir / "admin_token").exists()
    async with aiohttp.ClientSession() as session:
        async with session.post(gw.url + "/queue", json={"clear": True}) as response:
            assert response.status == 200


async def test_malformed_tokens_and_bodies_are_4xx_and_secrets_never_reach_the_log(start_gateway):
    gw = await start_gateway({"GATEWAY_API_KEYS": "k-secret-1234", "GATEWAY_ADMIN_TOKEN": "adm-secret-5678",
                              "GATEWAY_LOG_LEVEL": "DEBUG"})
    async with aiohttp.ClientSession() as session:
        for header in ("Bearer k-secret-1234ü", "Bearer  ", "Bearer a b", "Bearer " + "x" * 600):
            async with session.get(gw.url + "/api/workers",
                                   headers={"Authorization": header.encode().decode("latin-1")}) as response:
                assert response.status == 401, header
        good = {"Authorization": "Bearer k-secret-1234", "Content-Type": "application/json"}
        for body in (b"{not json", b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}", b"\xff\xfe"):
            async with session.post(gw.url + "/prompt", data=body, headers=good) as response:
                assert response.status == 400, body[:20]
                assert (await response.json())["error"]["type"] == "invalid_json"
        deep = {"url": "http://127.0.0.1:9", "name": json.loads("[" * 200 + "]" * 200)}
        async with session.post(gw.url + "/api/workers", json=deep,
                                headers={"Authorization": "Bearer adm-secret-5678"}) as response:
            assert response.status == 400 and "nests deeper" in (await response.json())["error"]["message"]
        # Failed requests that carry secrets in the query and in headers, and a worker URL with a password.
        for path in ("/api/nope?api_key=k-secret-1234", "/api/workers?api_key=wrong-secret-999",
                     "/view?filename=x.png&token=adm-secret-5678&api_key=k-secret-1234"):
            async with session.get(gw.url + path) as response:
                assert response.status in (401, 404, 503), path
        async with session.post(gw.url + "/api/workers", json={"url": "http://render:pw-secret-42@127.0.0.1:9"},
                                headers={"Authorization": "Bearer adm-secret-5678"}) as response:
            assert response.status == 201
    await gw.terminate()
    log = gw.log_text
    assert "/api/nope?api_key=***" in log, "the access line is there, with the key masked"
    for secret in ("k-secret-1234", "adm-secret-5678", "wrong-secret-999", "pw-secret-42"):
        assert secret not in log, secret
    assert "Traceback" not in log


async def test_x_forwarded_headers_count_only_from_trusted_proxies(start_gateway, tmp_path):
    fake = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    for trusted, seen in (("", "127.0.0.1"), ("127.0.0.1/32", "198.51.100.7")):
        gw = await start_gateway({"GATEWAY_TRUSTED_PROXIES": trusted} if trusted else {}, name=f"gw-{bool(trusted)}")
        async with aiohttp.ClientSession() as session:
            async with session.get(gw.url + "/api/no-such-route", headers=fake) as response:
                assert response.status == 404
        await gw.terminate()
        lines = [line for line in gw.log_text.splitlines() if "/api/no-such-route" in line]
        assert lines and f"({seen})" in lines[-1], (trusted, lines)


async def test_the_admin_page_forbids_framing_foreign_code_and_sniffing(start_gateway):
    gw = await start_gateway()
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/ui/app.js"):
            async with session.get(gw.url + path) as response:
                assert response.status == 200
                csp = response.headers["Content-Security-Policy"]
                assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["X-Frame-Options"] == "DENY"


async def test_credentials_stay_with_their_origin(start_gateway):
    gw = await start_gateway({"WORKER_AUTH_USERNAME": "global", "WORKER_AUTH_PASSWORD": "global-pw"})
    async with aiohttp.ClientSession() as session:
        async with session.post(gw.url + "/api/workers", json={
                "url": "http://127.0.0.1:9", "auth_username": "u", "auth_password": "own-pw"}) as response:
            worker = await response.json()
            assert worker["auth_password_set"]
        for url, kept in (("http://127.0.0.1:9/comfy", True), ("http://127.0.0.1:10", False),
                          ("https://127.0.0.1:10", False)):
            async with session.patch(f"{gw.url}/api/workers/{worker['id']}", json={"url": url}) as response:
                answer = await response.json()
                assert answer["auth_password_set"] is kept, url
        # The global pair goes only to registered workers: a probe of a new URL does not carry it.
        async with Recorder(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") as probe:
            async with session.post(gw.url + "/api/workers/test", json={"url": probe.url}) as response:
                assert response.status == 200
            assert b"authorization" not in probe.request.lower()
        async with session.post(gw.url + "/api/workers", json={"url": "not a url"}) as response:
            body = await response.json()
            assert response.status == 400 and body["error"]["field"] == "url"
        for bad in ("http://bad_host!:80", "http://a..b:1", "http://exa mple.com"):
            async with session.post(gw.url + "/api/workers", json={"url": bad}) as response:
                assert response.status == 400, bad

