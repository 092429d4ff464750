"""The simulator serves the editor as ComfyUI 0.3.64 does (comfyui-api.md §1.2, §1.3, §2, §12): the
frontend package at /, the custom node pack's files, the templates, the per-user routes, /internal
without an /api alias, and ComfyUI's cache headers."""

from __future__ import annotations

import aiohttp

from tests.fake_comfy.frontends import PINNED
from tests.fake_comfy.routes_frontend import frontend_version, installed_frontend


async def test_the_editor_and_what_it_reads_at_load(fake_comfy):
    root = installed_frontend()
    assert frontend_version(root) == PINNED  # what requirements-dev.txt pins, what 0.3.64 requires
    base = fake_comfy.url
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/") as r:
            assert r.status == 200 and await r.read() == (root / "index.html").read_bytes()
            assert (r.headers["Cache-Control"], r.headers["Pragma"], r.headers["Expires"]) == ("no-cache", "no-cache",
                                                                                              "0")
        async with s.get(base + "/api/system_stats") as r:
            assert (await r.json())["system"]["required_frontend_version"] == PINNED
        script = sorted((root / "assets").glob("index-*.js"))[0].name
        async with s.get(base + "/assets/" + script) as r:
            assert r.status == 200 and r.headers["Cache-Control"] == "no-cache"  # .js and .css: no-cache
        async with s.get(base + "/templates/gateway_invert-1.webp") as r:
            assert r.status == 200 and r.headers["Cache-Control"] == "public, max-age=86400"
        async with s.get(base + "/templates/index.json") as r:
            assert r.headers["Cache-Control"] == "no-cache"  # index*.json
            assert (await r.json())[0]["templates"][0]["name"] == "gateway_invert"
        async with s.get(base + "/view?filename=x.png") as r:
            assert "Cache-Control" not in r.headers  # decided by the path, not the query

        async with s.get(base + "/api/extensions") as r:
            extensions = await r.json()
        assert "/extensions/gateway_probe/probe.js" in extensions
        assert "/extensions/core/groupNode.js" in extensions  # the web root's own extensions folder
        async with s.get(base + "/extensions/gateway_probe/probe.js") as r:
            assert r.status == 200 and b"registerExtension" in await r.read()
        async with s.get(base + "/api/i18n") as r:
            assert (await r.json())["zh"]["gatewayProbe"]["greeting"] == "探针扩展已加载"
        async with s.get(base + "/api/workflow_templates") as r:
            assert await r.json() == {"gateway_probe": ["no_model_invert"]}
        async with s.get(base + "/api/workflow_templates/gateway_probe/no_model_invert.json") as r:
            graph = await r.json()
        assert sorted(node["type"] for node in graph["nodes"]) == ["EmptyImage", "ImageInvert", "SaveImage"]
        async with s.get(base + "/workflow_templates/gateway_probe/no_model_invert.json") as r:
            assert r.status == 404  # ComfyUI mounts these under /api only

        async with s.get(base + "/internal/folder_paths") as r:
            assert "checkpoints" in await r.json()
        async with s.get(base + "/internal/logs/raw") as r:
            assert "To see the GUI go to" in (await r.json())["entries"][0]["m"]
        async with s.get(base + "/internal/files/nope") as r:
            assert r.status == 400 and await r.json() == {"error": "Invalid directory type"}
        async with s.get(base + "/api/internal/folder_paths") as r:
            assert r.status == 404  # /internal has no /api alias
        async with s.get(base + "/api/experiment/models") as r:
            names = [folder["name"] for folder in await r.json()]
        assert "checkpoints" in names and "configs" not in names and "custom_nodes" not in names
        async with s.get(base + "/api/experiment/models/nope") as r:
            assert r.status == 404


async def test_user_data_lives_in_the_user_folder(fake_comfy):
    base = fake_comfy.url
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/api/users") as r:
            assert await r.json() == {"storage": "server", "migrated": False}
        async with s.get(base + "/api/userdata?dir=workflows&recurse=true&split=false&full_info=true") as r:
            assert r.status == 404 and await r.text() == "Directory not found"
        async with s.post(base + "/api/settings/Comfy.InstalledVersion", data=b'"1.27.10"') as r:
            assert r.status == 200 and await r.read() == b""
        settings = fake_comfy.data_dir / "user" / "default" / "comfy.settings.json"
        assert settings.read_text().startswith("{\n    ")  # indent=4, as ComfyUI writes it
        async with s.post(base + "/api/userdata/workflows%2Fa.json?overwrite=false", data=b"{}") as r:
            assert await r.json() == "workflows/a.json"
        assert (fake_comfy.data_dir / "user" / "default" / "workflows" / "a.json").read_bytes() == b"{}"
        async with s.get(base + "/api/users") as r:
            assert (await r.json())["migrated"] is True
