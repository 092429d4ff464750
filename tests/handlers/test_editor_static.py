"""The editor's files through the gateway: relayed from one online worker, cached, never with the
client's secrets, never following a redirect; another worker takes over when it goes away; the views
merged over the workers (extensions, translations, templates); the sign-in with an API key."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from gateway.editor.static import StaticFiles
from gateway.errors import WorkerBadAnswer
from gateway.workers.client import WorkerClient
from tests.fake_comfy.routes_frontend import DEFAULT_CUSTOM_NODES, installed_frontend
from tests.harness import Cluster
from tests.raw_servers import Recorder

FRONTEND = installed_frontend()  # requirements-dev.txt installs it


def asset_name() -> str:
    """A hashed file of the installed frontend, as the editor's index.html loads them."""
    return sorted(p.name for p in (FRONTEND / "assets").glob("*.css"))[0]


async def wait_source_change(cluster: Cluster, old: int) -> None:
    import asyncio
    for _ in range(200):
        worker = cluster.gateway.registry.get(old)
        if worker.status != "online":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the stopped worker never went offline")


def other_pack(tmp_path: Path) -> Path:
    """A second custom node pack, installed on one worker only."""
    pack = tmp_path / "studio_pack"
    shutil.copytree(DEFAULT_CUSTOM_NODES[0], pack)
    (pack / "web" / "probe.js").rename(pack / "web" / "studio.js")
    (pack / "locales" / "en" / "main.json").write_text('{"studioPack": {"hello": "Studio pack"}}')
    (pack / "example_workflows" / "no_model_invert.json").rename(pack / "example_workflows" / "studio_flow.json")
    return pack


async def test_files_come_from_one_worker_cached_and_without_client_secrets(tmp_path):
    cluster = Cluster(tmp_path / "gw")
    await cluster.start()
    try:
        first = await cluster.add_sim()
        second = await cluster.add_sim(custom_nodes=[*DEFAULT_CUSTOM_NODES, other_pack(tmp_path)])
        await cluster.wait_online()
        status, _ = await cluster.request("GET", "/comfy", allow_redirects=False)
        assert status == 301
        secrets = {"Cookie": "comfyui_gateway_key=k; session=s", "Authorization": "Bearer studio-key",
                   "Origin": cluster.url}
        async with cluster.session.get(cluster.url + "/comfy/", headers=secrets) as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
            assert r.headers["Cache-Control"] == "no-cache"
            assert await r.read() == (FRONTEND / "index.html").read_bytes()
        source = cluster.gateway.editor.static.source_id
        sim = first if source == first.worker_id else second
        other = second if sim is first else first
        path = "/comfy/assets/" + asset_name()
        async with cluster.session.get(cluster.url + path, headers=secrets) as r:
            body = await r.read()
            etag = r.headers["ETag"]
            assert r.status == 200 and body == (FRONTEND / "assets" / asset_name()).read_bytes()
            assert r.headers["Cache-Control"] == "no-cache"  # ComfyUI's rule for .css, passed on
        seen = [headers for method, p, headers in sim.requests if p == path[len("/comfy"):]]
        assert len(seen) == 1
        assert not {"Cookie", "Authorization", "Origin"} & set(seen[0])  # only the worker's own Basic auth
        # The next user and the browser's revalidation are answered from the gateway's cache.
        async with cluster.session.get(cluster.url + path) as r:
            assert r.status == 200 and await r.read() == body
        async with cluster.session.get(cluster.url + path, headers={"If-None-Match": etag}) as r:
            assert r.status == 304
        assert len([p for _, p, _ in sim.requests if p == path[len("/comfy"):]]) == 1
        assert cluster.gateway.editor.static.cache_stats()["entries"] >= 2

        # Custom node packs may differ between workers: extensions and texts are merged, and a pack's
        # file comes from whichever worker has it.
        extensions = await cluster.get("/comfy/api/extensions")
        assert "/extensions/gateway_probe/probe.js" in extensions and "/extensions/studio_pack/studio.js" in extensions
        assert len(extensions) == len(set(extensions))
        i18n = await cluster.get("/comfy/api/i18n")
        assert i18n["en"]["studioPack"] == {"hello": "Studio pack"} and "gatewayProbe" in i18n["zh"]
        templates = await cluster.get("/comfy/api/workflow_templates")
        assert templates["gateway_probe"] == ["no_model_invert"] and templates["studio_pack"] == ["studio_flow"]
        for pack_file in ("/comfy/extensions/studio_pack/studio.js",
                          "/comfy/api/workflow_templates/studio_pack/studio_flow.json"):
            status, _ = await cluster.request("GET", pack_file)
            assert status == 200, pack_file
        status, _ = await cluster.request("GET", "/comfy/extensions/nobody/x.js")
        assert status == 404

        # Not a static file: ComfyUI's own empty 404 for API routes the gateway does not serve; no escape.
        for bad in ("/comfy/api/manager/reboot", "/comfy/..%2F..%2Fetc%2Fpasswd", "/comfy/scripts/..%2F..%2Fx"):
            status, body = await cluster.request("GET", bad)
            assert status == 404 and not body, bad

        # The source worker goes away: the other one takes over, nothing else changes for the user.
        await sim.stop()
        await wait_source_change(cluster, sim.worker_id)
        status, _ = await cluster.request("GET", path)
        assert status == 200
        assert cluster.gateway.editor.static.source_id == other.worker_id
        await other.stop()
        await wait_source_change(cluster, other.worker_id)
        async with cluster.session.get(cluster.url + "/comfy/") as r:
            assert r.status == 503 and "No worker is online" in await r.text()
    finally:
        await cluster.stop()


async def test_redirects_are_never_followed():
    answer = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest\r\nContent-Length: 0\r\n\r\n"
    async with Recorder(answer) as worker:
        client = WorkerClient(worker.url, "raw", lambda: ("gw", "pw"), lambda: 5.0)
        registry = SimpleNamespace(all=lambda: [online], get=lambda _id: online)
        online = SimpleNamespace(id=1, name="raw", status="online", queue_remaining=0, client=client)
        files = StaticFiles(registry, lambda: 1 << 20)
        sent = []
        sink = SimpleNamespace(begin=lambda status, headers: sent.append(status), chunk=None)
        with pytest.raises(WorkerBadAnswer, match="redirect"):
            await files.serve("/index.html", {"Cookie": "a=b", "If-None-Match": '"x"'}, sink)
        assert sent == []
        head = worker.request.decode()
        assert head.startswith("GET /index.html ") and "If-None-Match" in head
        assert "Cookie" not in head and "Authorization: Basic" in head  # the worker's own credentials only


async def test_the_editor_signs_in_with_an_api_key(tmp_path):
    cluster = Cluster(tmp_path / "gw", GATEWAY_API_KEYS="studio-key")
    await cluster.start()
    try:
        async with cluster.session.get(cluster.url + "/comfy/") as r:
            assert r.status == 401 and "API key" in await r.text()
        status, _ = await cluster.request("GET", "/comfy/api/settings")
        assert status == 401
        status, _ = await cluster.request("POST", "/comfy/login", headers={"Authorization": "Bearer wrong"})
        assert status == 401
        async with cluster.session.post(cluster.url + "/comfy/login",
                                        headers={"Authorization": "Bearer studio-key"}) as r:
            assert r.status == 200
            cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/comfy/" in cookie
        jar = {"Cookie": cookie.split(";")[0]}  # what a browser sends back (aiohttp keeps none for an IP)
        status, body = await cluster.request("GET", "/comfy/api/settings", headers=jar)
        assert (status, body) == (200, {})
        async with cluster.session.get(cluster.url + "/comfy/", headers=jar) as r:
            assert r.status == 503  # signed in; no worker yet
        async with cluster.session.ws_connect(cluster.url.replace("http", "ws") + "/comfy/ws", headers=jar) as ws:
            first = await ws.receive_json()
            assert first["type"] == "status" and first["data"]["sid"]  # the editor's socket, by the cookie
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await cluster.session.ws_connect(cluster.url.replace("http", "ws") + "/comfy/ws")
        status, _ = await cluster.request("GET", "/api/workers", headers=jar)  # the cookie is the editor's only
        assert status == 401
        status, _ = await cluster.request("GET", "/api/workers", headers={"Authorization": "Bearer studio-key"})
        assert status == 200
        async with cluster.session.delete(cluster.url + "/comfy/login", headers=jar) as r:
            assert r.status == 204 and r.headers["Set-Cookie"].startswith('comfyui_gateway_key="";')
    finally:
        await cluster.stop()
