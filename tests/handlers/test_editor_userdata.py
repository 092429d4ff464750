"""The editor's user routes under /comfy/ answer as ComfyUI does: one scenario of the calls the editor
makes (and its mistakes) runs against the simulator, which models ComfyUI 0.3.64 on disk, and against
the gateway, which keeps the data in its store; statuses and bodies must match. Then what only the
gateway does: limits, stored-file hardening, and data that outlives every worker."""

from __future__ import annotations

import aiohttp
import pytest

from tests.fake_comfy import FakeComfy
from tests.harness import Cluster

TEXT = {"Content-Type": "text/plain;charset=UTF-8"}  # what the editor's fetch() sends with a string body
WORKFLOW = b'{"last_node_id": 3, "nodes": [], "links": [], "version": 0.4}'
SCENARIO = [
    ("GET", "/api/users", None),
    ("GET", "/api/userdata?dir=workflows&recurse=true&split=false&full_info=true", None),
    ("GET", "/api/userdata", None),
    ("GET", "/api/userdata?dir=..%2Fother", None),
    ("POST", "/api/settings/Comfy.InstalledVersion", b'"1.27.10"'),
    ("GET", "/api/settings", None),
    ("GET", "/api/settings/Comfy.InstalledVersion", None),
    ("GET", "/api/settings/Comfy.Unknown", None),
    ("POST", "/api/settings", b'{"Comfy.Locale": "zh", "Comfy.ColorPalette": "dark"}'),
    ("GET", "/settings", None),
    ("POST", "/api/userdata/workflows%2Fa.json?overwrite=false&full_info=true", WORKFLOW),
    ("POST", "/api/userdata/workflows%2Fa.json?overwrite=false&full_info=true", WORKFLOW),
    ("POST", "/api/userdata/workflows%2Fa.json", WORKFLOW + b" "),
    ("GET", "/api/userdata/workflows%2Fa.json", None),
    ("POST", "/api/userdata/workflows%2Fsub%2Fb.json?full_info=false", b"{}"),
    ("GET", "/api/userdata?dir=workflows", None),
    ("GET", "/api/userdata?dir=workflows&recurse=true", None),
    ("GET", "/api/userdata?dir=workflows&recurse=true&split=true", None),
    ("GET", "/api/userdata?dir=workflows%2F&recurse=true&split=false&full_info=true", None),
    ("GET", "/api/userdata?dir=workflows%2Fa.json", None),
    ("GET", "/api/v2/userdata", None),
    ("GET", "/api/v2/userdata?path=workflows", None),
    ("GET", "/api/v2/userdata?path=nowhere", None),
    ("GET", "/api/v2/userdata?path=workflows%2Fa.json", None),
    ("POST", "/api/userdata/workflows%2Fa.json/move/workflows%2Fc.json?overwrite=false&full_info=true", b""),
    ("POST", "/api/userdata/workflows%2Fa.json/move/workflows%2Fd.json", b""),
    ("POST", "/api/userdata/workflows%2Fsub%2Fb.json/move/workflows%2Fc.json?overwrite=false", b""),
    ("GET", "/api/userdata/workflows%2Fc.json", None),
    ("DELETE", "/api/userdata/workflows%2Fc.json", None),
    ("DELETE", "/api/userdata/workflows%2Fc.json", None),
    ("GET", "/api/userdata/comfy.templates.json", None),
    ("GET", "/api/userdata/..%2F..%2Fetc%2Fpasswd", None),
    ("POST", "/api/userdata/..%2Foutside.json", b"{}"),
    ("GET", "/api/userdata/workflows%252Fsub%252Fb.json", None),
    ("GET", "/api/users", None),
    ("POST", "/api/users", b'{"username": "default"}'),
]


def normalised(body):
    """Timestamps (ms of the file system vs the store) set to 0."""
    if isinstance(body, list):
        return [normalised(item) for item in body]
    if isinstance(body, dict):
        return {k: (0 if k in ("modified", "created") else normalised(v)) for k, v in body.items()}
    return body


async def run_scenario(session: aiohttp.ClientSession, base: str) -> list:
    """(status, content kind, body) of every step."""
    out = []
    for method, path, body in SCENARIO:
        async with session.request(method, base + path, data=body, headers=TEXT if body is not None else {}) as r:
            raw = await r.read()
            kind = (r.headers.get("Content-Type") or "").split(";")[0]
            if method == "GET" and "userdata/" in path and r.status == 200:
                out.append((method, path, r.status, "file", raw))
            elif kind == "application/json":
                parsed = normalised(await r.json())
                if isinstance(parsed, list):  # file-system listings come in directory order
                    parsed = sorted(parsed, key=repr)
                out.append((method, path, r.status, kind, parsed))
            else:
                out.append((method, path, r.status, kind if raw else "", raw.decode(errors="replace")))
    return out


async def test_the_gateway_answers_the_editors_user_routes_like_comfyui(tmp_path):
    sim = FakeComfy(frontend_root=None)
    await sim.start()
    cluster = Cluster(tmp_path / "gw")
    await cluster.start()
    try:
        async with aiohttp.ClientSession() as session:
            expected = await run_scenario(session, sim.url)
            actual = await run_scenario(session, cluster.url + "/comfy")
        for want, got in zip(expected, actual):
            assert got == want
        statuses = [step[2] for step in actual]
        assert statuses.count(404) >= 5 and 409 in statuses and 403 in statuses and 204 in statuses
    finally:
        await cluster.stop()
        await sim.stop()
        sim.cleanup()


@pytest.fixture
async def gateway(tmp_path):
    cluster = Cluster(tmp_path / "gw", GATEWAY_EDITOR_FILE_LIMIT_MB="0.01")
    await cluster.start()
    yield cluster
    await cluster.stop()


async def test_limits_and_hardening(gateway):
    big = b"x" * 20_000
    status, body = await gateway.request("POST", "/comfy/api/userdata/workflows%2Fbig.json", data=big)
    assert status == 413 and "GATEWAY_EDITOR_FILE_LIMIT_MB" in body
    status, _ = await gateway.request("POST", "/comfy/api/settings", data=b'{"x": "' + big + b'"}')
    assert status == 413
    for bad in ("/comfy/api/settings", "/comfy/api/settings/Comfy.X"):
        status, body = await gateway.request("POST", bad, data=b"{not json")
        assert status == 400, (bad, body)  # ComfyUI answers 500; a client's mistake is a 4xx here
    status, body = await gateway.request("POST", "/comfy/api/settings", data=b"[1, 2]")
    assert status == 400 and "object" in body
    status, body = await gateway.request("POST", "/comfy/api/userdata/bad%5Cname.json", data=b"{}")
    assert status == 400 and "Invalid filename" in body

    # A stored page or script is a download, never rendered on the gateway's origin; user.css is a stylesheet.
    await gateway.request("POST", "/comfy/api/userdata/x.html", data=b"<script>alert(1)</script>")
    async with gateway.session.get(gateway.url + "/comfy/api/userdata/x.html") as r:
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Disposition"] == "attachment"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    await gateway.request("POST", "/comfy/api/userdata/user.css", data=b"body { color: red }")
    async with gateway.session.get(gateway.url + "/comfy/api/userdata/user.css") as r:
        assert r.headers["Content-Type"] == "text/css" and r.headers["Content-Disposition"] == "inline"
        assert await r.read() == b"body { color: red }"


async def test_user_data_outlives_workers_and_the_gateway(tmp_path):
    cluster = Cluster(tmp_path / "gw")
    await cluster.start()
    try:
        sim = await cluster.add_sim(frontend_root=None)
        await cluster.wait_online()
        status, _ = await cluster.request("POST", "/comfy/api/userdata/workflows%2Fkeep.json", data=WORKFLOW)
        assert status == 200
        await cluster.request("POST", "/comfy/api/settings/Comfy.Locale", data=b'"zh"')
        await sim.stop()  # no worker at all: the user's data is the gateway's
        await cluster.restart_gateway()
        assert await cluster.get("/comfy/api/settings") == {"Comfy.Locale": "zh"}
        async with cluster.session.get(cluster.url + "/comfy/api/userdata/workflows%2Fkeep.json") as r:
            assert r.status == 200 and await r.read() == WORKFLOW
        assert await cluster.get("/comfy/api/userdata?dir=workflows") == ["keep.json"]
        status, _ = await cluster.request("GET", "/settings")
        assert status == 404  # the editor's routes live under /comfy/ only: /api/settings is the gateway's
    finally:
        await cluster.stop()


async def test_two_gateways_on_one_database_show_the_same_user_data(tmp_path):
    from tests.store.services import temporary_mysql_database
    with temporary_mysql_database() as mysql:
        env = {"MYSQL_HOST": mysql["host"], "MYSQL_PORT": mysql["port"], "MYSQL_USER": mysql["user"],
               "MYSQL_PASSWORD": mysql["password"], "MYSQL_DATABASE": mysql["database"]}
        first, second = Cluster(tmp_path / "a", **env), Cluster(tmp_path / "b", **env)
        await first.start()
        await second.start()
        try:
            status, _ = await first.request("POST", "/comfy/api/userdata/workflows%2Fshared.json", data=WORKFLOW)
            assert status == 200
            await second.request("POST", "/comfy/api/settings/Comfy.Locale", data=b'"zh"')
            async with second.session.get(second.url + "/comfy/api/userdata/workflows%2Fshared.json") as r:
                assert r.status == 200 and await r.read() == WORKFLOW
            assert await first.get("/comfy/api/settings") == {"Comfy.Locale": "zh"}
            assert await second.get("/comfy/api/users") == {"storage": "server", "migrated": True}
        finally:
            await first.stop()
            await second.stop()
