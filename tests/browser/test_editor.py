"""The real ComfyUI editor through the gateway, in headless Chromium, with the frontend ComfyUI 0.3.64
requires (1.27.10) and the newest one.

Two simulators serve the frontend package as ComfyUI does. The editor opens at /comfy/ on the gateway,
loads the custom node pack's extension and its no-model workflow (EmptyImage -> ImageInvert ->
SaveImage) through the app, runs it with the Run button, shows the output image, and the job is in the
gateway's history; a long run is stopped with the editor's cancel button. A workflow saved with Ctrl+S is still listed after the worker that served the
editor's files is stopped and the other one takes over. The page logs nothing the same editor does not
log when opened on one simulator directly (fresh user data both times), beyond the 404s ComfyUI itself
answers for optional files.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from playwright.async_api import expect

from tests.fake_comfy.frontends import NEWEST, PINNED, ensure_frontend
from tests.harness import Cluster

from .conftest import _unavailable
from .helpers import screenshot_path

READY = "() => window.app && window.app.graph && document.querySelector('canvas') && window.gatewayProbe?.loaded"
OUTPUT_SHOWN = """() => {
  const node = app.graph.getNodeById(3);
  const img = node && node.imgs && node.imgs[0];
  return img && img.complete && img.naturalWidth > 0 ? img.src : null;
}"""
LOAD_TEMPLATE = """async () => {
  const answer = await fetch("api/workflow_templates/gateway_probe/no_model_invert.json");
  await app.loadGraphData(await answer.json());
  return app.graph.nodes.map((n) => n.type).sort();
}"""
# What ComfyUI answers 404 to on a fresh install (comfyui-api.md §12): the optional user stylesheets,
# the not yet created workflows and subgraphs folders, the user's node templates and workflow bookmarks.
EXPECTED_404 = ("/user.css", "/api/userdata/user.css", "/api/userdata?dir=workflows",
                "/api/userdata?dir=subgraphs", "/api/userdata/comfy.templates.json",
                "/api/userdata/workflows%2F.index.json")
LOAD_MS = 60000  # the first load moves the whole frontend (12-50 MB) through the gateway


@pytest.fixture(params=[PINNED, NEWEST])
def frontend(request):
    """(version, static folder) of a frontend; the newest is installed into .cache/frontends once."""
    try:
        return request.param, ensure_frontend(request.param)
    except (subprocess.CalledProcessError, OSError) as exc:
        _unavailable(f"comfyui-frontend-package {request.param} could not be installed: {exc}")


def allow_expected(probe, base: str) -> None:
    for path in EXPECTED_404:
        probe.allow_http_error(base + path)
    probe.allow_http_error("https://")  # the editor's calls to comfy.org: this machine has no Internet


def page_errors(probe) -> list[str]:
    """Uncaught exceptions and console errors that are not about loading a resource."""
    return [e for e in probe.errors if not e.startswith("console.error: Failed to load resource")]


async def upstream_errors(open_page, sim) -> set[str]:
    """What the same editor logs when opened directly on a simulator with fresh user data."""
    probe = await open_page(sim.url + "/")
    allow_expected(probe, sim.url)
    await probe.page.wait_for_function(READY, timeout=LOAD_MS)
    await probe.page.wait_for_timeout(1500)
    return set(page_errors(probe))


async def wait_running(cluster: Cluster) -> str:
    """The prompt id of the job the cluster runs now."""
    for _ in range(300):
        running = [job for job in cluster.gateway.jobs.active.values() if job.state == "running"]
        if running:
            return running[0].prompt_id
        await asyncio.sleep(0.05)
    raise AssertionError("no job started running")


async def test_editor_through_the_gateway(tmp_path, open_page, frontend):
    version, root = frontend
    cluster = Cluster(tmp_path / "gw")
    await cluster.start()
    try:
        sims = [await cluster.add_sim(frontend_root=root, node_seconds=0.2,
                                      device_name=f"cuda:0 NVIDIA RTX 409{i} : cudaMallocAsync") for i in range(2)]
        await cluster.wait_online()
        known = await upstream_errors(open_page, sims[0])

        probe = await open_page(cluster.url + "/comfy/")
        allow_expected(probe, cluster.url + "/comfy")
        page = probe.page
        await page.wait_for_function(READY, timeout=LOAD_MS)
        assert await page.evaluate("window.gatewayProbe.base") == "/comfy/"  # the pack's JS, via the gateway
        await page.wait_for_timeout(1000)
        await page.keyboard.press("Escape")  # the first-run templates dialog
        assert await page.evaluate(LOAD_TEMPLATE) == ["EmptyImage", "ImageInvert", "SaveImage"]

        await page.get_by_role("button", name="Run", exact=True).first.click()
        handle = await page.wait_for_function(OUTPUT_SHOWN, timeout=30000)
        src = await handle.json_value()
        assert "/comfy/api/view?filename=inverted_gw" in src and "type=output" in src
        history = await cluster.get("/api/history")
        assert len(history) == 1, history
        (prompt_id, entry), = history.items()
        image = entry["outputs"]["3"]["images"][0]
        assert f"filename={image['filename']}" in src and image["subfolder"] == "editor"
        assert entry["prompt"][3]["extra_pnginfo"]["workflow"]["nodes"]  # the editor's graph came along
        assert entry["prompt"][3]["client_id"] == await page.evaluate("window.comfyAPI.api.api.clientId")
        status = await cluster.get(f"/api/task/{prompt_id}/status")
        assert status["status"] == "done" and status["worker"] in ("sim1", "sim2")
        if version == PINNED:
            await page.keyboard.press("q")  # the queue panel: the job, run by the cluster, with its image
            await page.wait_for_timeout(800)
            await page.mouse.move(700, 600)
            await page.screenshot(path=screenshot_path("editor"))
            await page.keyboard.press("q")

        # A long run (a 2560x2560 EmptyImage takes the simulator about 5 s), stopped from the editor.
        await page.evaluate("""() => { const empty = app.graph.getNodeById(1);
            for (const w of empty.widgets) if (w.name === "width" || w.name === "height") w.value = 2560; }""")
        await page.get_by_role("button", name="Run", exact=True).first.click()
        running = await wait_running(cluster)
        await page.get_by_role("button", name="Cancel current run").first.click()
        assert (await cluster.wait_job(running, states=("failed",)))["error"]["type"] in ("interrupted", "cancelled")
        await page.evaluate("""() => { const empty = app.graph.getNodeById(1);
            for (const w of empty.widgets) if (w.name === "width" || w.name === "height") w.value = 256; }""")

        await page.keyboard.press("Control+s")
        name_box = page.locator("[role=dialog] input:focus, .p-dialog input:focus").first  # "Save workflow as"
        await name_box.fill("studio invert")
        await name_box.press("Enter")
        await expect(page.locator("[role=dialog] input, .p-dialog input")).to_have_count(0)
        for _ in range(50):
            saved = (await cluster.request("GET", "/comfy/api/userdata?dir=workflows"))[1]
            if saved == ["studio invert.json"]:
                break
            await asyncio.sleep(0.1)
        assert saved == ["studio invert.json"]

        # The worker the editor's files came from goes away; the other one serves the next load.
        source = cluster.gateway.editor.static.source_id
        gone = next(sim for sim in sims if sim.worker_id == source)
        await gone.stop()
        for _ in range(200):
            if cluster.gateway.registry.get(source).status != "online":
                break
            await asyncio.sleep(0.05)
        await page.reload()
        await page.wait_for_function(READY, timeout=LOAD_MS)
        assert cluster.gateway.editor.static.source_id not in (None, source)
        await page.wait_for_timeout(1000)
        await page.keyboard.press("Escape")
        await page.keyboard.press("w")  # the workflows sidebar
        await expect(page.get_by_text("studio invert").filter(visible=True).first).to_be_visible()
        listed = await page.evaluate("() => document.body.innerText")
        assert "studio invert" in listed

        errors = [e for e in page_errors(probe) if e not in known]
        assert errors == [], errors
        http_errors = [e for e in probe.errors if e not in page_errors(probe)]
        assert http_errors == [], [url for text, url in probe._errors if "Failed to load" in text
                                   and not any(part in url for part in probe._allowed)]
    finally:
        await cluster.stop()
