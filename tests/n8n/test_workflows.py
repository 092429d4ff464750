"""The n8n workflows in docs/n8n/ run as written: each file is replayed (replay.py, with n8n's own
expression engine) against a real gateway and a real simulator, through success (the images land on disk,
byte for byte), a failed job and a timeout. The files follow n8n's export format, name the gateway in one
place, and every expression docs/n8n.md shows is one of theirs (so it was resolved here too)."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import aiohttp
import pytest

from tests.harness import Cluster, free_port
from tests.store.services import unavailable

from .replay import Replay, Resolver, WebhookInbox

ROOT = Path(__file__).resolve().parents[2]
FILES = {"wait": "comfyui-gateway-wait.json", "polling": "comfyui-gateway-polling.json",
         "webhook": "comfyui-gateway-webhook.json"}
PLACEHOLDER = "http://127.0.0.1:8000"
CHECKPOINT = "v1-5-pruned-emaonly-fp16.safetensors"
# Node types and the newest version of each that n8n 1.123 (n8n-nodes-base 1.121) runs; older ones import too.
N8N_NODES = {"n8n-nodes-base.manualTrigger": 1, "n8n-nodes-base.set": 3.4, "n8n-nodes-base.httpRequest": 4.3,
             "n8n-nodes-base.if": 2.3, "n8n-nodes-base.wait": 1.1, "n8n-nodes-base.stopAndError": 1,
             "n8n-nodes-base.splitOut": 1, "n8n-nodes-base.readWriteFile": 1, "n8n-nodes-base.stickyNote": 1}
LAST_NODES = {"wait": "Submit and wait", "polling": "Get status", "webhook": "Submit workflow"}


def load(kind: str) -> dict:
    return json.loads((ROOT / "docs" / "n8n" / FILES[kind]).read_text(encoding="utf-8"))


def configure(workflow: dict, gateway: str, folder: Path, timeout: float | None = None) -> dict:
    """The workflow with the gateway's address (and output folder, timeout) set as a user would."""
    workflow = copy.deepcopy(workflow)
    settings = next(node for node in workflow["nodes"] if node["name"] == "Gateway settings")
    for assignment in settings["parameters"]["assignments"]["assignments"]:
        if assignment["name"] == "gateway":
            assignment["value"] = gateway
        elif assignment["name"] == "output_folder":
            assignment["value"] = str(folder)
        elif assignment["name"] == "timeout_seconds" and timeout is not None:
            assignment["value"] = timeout
    return workflow


@pytest.fixture
async def resolver():
    if shutil.which("node") is None:
        unavailable("Node.js is not installed (the n8n replay resolves expressions with n8n's own code)")
    if not (Path(__file__).parent / "node_modules" / "n8n-workflow").is_dir():
        unavailable("tests/n8n/node_modules is missing: run ./run.sh test (it runs npm ci in tests/n8n)")
    started = await Resolver.start()
    yield started
    await started.close()


async def _gateway(tmp_path: Path, **settings) -> Cluster:
    cluster = Cluster(tmp_path / "gw", **settings)
    await cluster.start()
    sim = await cluster.add_sim(node_seconds=0.005, models={"checkpoints": [CHECKPOINT]})
    await cluster.wait_online()
    cluster.sim = sim
    return cluster


async def _replay(kind: str, cluster: Cluster, resolver: Resolver, folder: Path, timeout: float | None = None):
    folder.mkdir(exist_ok=True)  # an existing folder, as n8n's Read/Write Files node needs
    inbox = await WebhookInbox().start(free_port()) if kind == "webhook" else None
    try:
        async with aiohttp.ClientSession() as session:
            replay = Replay(configure(load(kind), cluster.url, folder, timeout), resolver, session, inbox,
                            execution_id="4242")
            return await replay.run()
    finally:
        if inbox is not None:
            await inbox.stop()


@pytest.mark.parametrize("kind", list(FILES))
async def test_the_workflow_runs_to_the_images_on_disk(kind, tmp_path, resolver):
    cluster = await _gateway(tmp_path)
    try:
        outcome = await _replay(kind, cluster, resolver, tmp_path / "out")
        assert outcome.stopped is None, outcome.stopped
        # The seed and the prompt text from "Job input" reached the worker.
        job_input = outcome.output("Job input")[0]["json"]
        submit = next(r for r in outcome.requests if r.url.endswith("/api/prompt"))
        assert submit.method == "POST" and submit.url == cluster.url + "/api/prompt"
        prompt_id = submit.answer["prompt_id"]
        history = await cluster.get(f"/api/history/{prompt_id}")
        ran = history[prompt_id]["prompt"][2]
        assert ran["3"]["inputs"]["seed"] == job_input["seed"] and isinstance(job_input["seed"], int)
        assert ran["6"]["inputs"]["text"] == job_input["prompt_text"] == "a lighthouse on a cliff at dusk, oil painting"
        # The images are on disk, byte for byte the worker's.
        images = history[prompt_id]["outputs"]["9"]["images"]
        assert outcome.ran("Save file") == 1 and len(outcome.written) == len(images) == 1
        for image in images:
            path = tmp_path / "out" / image["filename"]
            assert outcome.written[str(path)] == path.read_bytes()
            assert path.read_bytes() == (cluster.sim.output_dir / image["subfolder"] / image["filename"]).read_bytes()
        downloads = [r for r in outcome.requests if r.node == "Download file"]
        assert [r.url for r in downloads] == [image["url"] for image in images]
        if kind == "polling":  # the long poll turns once per change of state, never more
            assert outcome.ran("Get status") <= 3, outcome.ran("Get status")
            assert all(r.query == {"wait": "30"} for r in outcome.requests if r.node == "Get status")
        if kind == "webhook":
            assert submit.body["webhook"] == outcome_resume_url(outcome)
    finally:
        await cluster.stop()


def outcome_resume_url(outcome) -> str:
    """The resume URL the Wait node was called on (the Submit node's body named it)."""
    call = outcome.output("Wait for the webhook")[0]["json"]
    assert call["body"]["event"] == "job_finished"
    return next(r.body["webhook"] for r in outcome.requests if r.node == "Submit workflow")


@pytest.mark.parametrize("kind", list(FILES))
async def test_a_failed_job_takes_the_error_branch(kind, tmp_path, resolver):
    cluster = await _gateway(tmp_path)
    try:
        cluster.sim.fail_prompt(lambda prompt_id: True)
        outcome = await _replay(kind, cluster, resolver, tmp_path / "out")
        assert outcome.stopped is not None and outcome.stopped.node == "Job failed", outcome.stopped
        assert re.match(r"ComfyUI job [0-9a-f-]{36} failed: \w+: .+", outcome.stopped.message), outcome.stopped.message
        assert not outcome.written and not outcome.ran("Download file")
    finally:
        await cluster.stop()


@pytest.mark.parametrize("kind", list(FILES))
async def test_a_job_that_does_not_end_in_time_takes_the_timeout_branch(kind, tmp_path, resolver):
    # The long poll answers after max_wait_seconds at the latest; the give-up check then sees the time.
    cluster = await _gateway(tmp_path, GATEWAY_MAX_WAIT_SECONDS="0.5")
    try:
        await cluster.post("/api/dispatch", {"paused": True})
        outcome = await _replay(kind, cluster, resolver, tmp_path / "out", timeout=1)
        assert outcome.stopped is not None and outcome.stopped.node == "Timed out", outcome.stopped
        assert not outcome.written
        assert outcome.ran(LAST_NODES[kind]) >= 1
        prompt_id = next(r.answer["prompt_id"] for r in outcome.requests if r.url.endswith("/api/prompt"))
        assert prompt_id in outcome.stopped.message
        assert (await cluster.get(f"/api/task/{prompt_id}/status"))["status"] == "queued"  # nothing cancelled it
    finally:
        await cluster.stop()


@pytest.mark.parametrize("kind", list(FILES))
def test_the_file_is_an_n8n_export_with_the_gateway_in_one_place(kind):
    text = (ROOT / "docs" / "n8n" / FILES[kind]).read_text(encoding="utf-8")
    workflow = json.loads(text)
    assert text.count(PLACEHOLDER) == 1
    assert set(workflow) >= {"name", "nodes", "connections", "settings", "pinData", "active"}
    assert workflow["settings"]["executionOrder"] == "v1" and workflow["active"] is False
    names = [node["name"] for node in workflow["nodes"]]
    assert len(names) == len(set(names))
    ids = [node["id"] for node in workflow["nodes"]]
    assert len(ids) == len(set(ids))
    for node in workflow["nodes"]:
        assert set(node) >= {"parameters", "id", "name", "type", "typeVersion", "position"}, node["name"]
        assert node["type"] in N8N_NODES and node["typeVersion"] <= N8N_NODES[node["type"]], node
        assert len(node["position"]) == 2
        if "{{" in json.dumps(node["parameters"]):
            for value in _strings(node["parameters"]):
                assert "{{" not in value or value.startswith("="), (node["name"], value)  # n8n's expression mark
    triggers = [n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.manualTrigger"]
    assert len(triggers) == 1
    for source, outputs in workflow["connections"].items():
        assert source in names
        for output in outputs["main"]:
            for connection in output:
                assert connection["node"] in names and connection["type"] == "main"
    # Every node but the notes is reachable from the trigger: nothing in the file is decoration.
    reachable, todo = set(), [triggers[0]["name"]]
    while todo:
        name = todo.pop()
        if name not in reachable:
            reachable.add(name)
            todo += [c["node"] for output in workflow["connections"].get(name, {}).get("main", []) for c in output]
    assert reachable == {n["name"] for n in workflow["nodes"] if n["type"] != "n8n-nodes-base.stickyNote"}
    settings = next(n for n in workflow["nodes"] if n["name"] == "Gateway settings")
    assert PLACEHOLDER in json.dumps(settings)
    assert any(n["name"] == "Download file" for n in workflow["nodes"])
    assert {"Job failed", "Timed out"} <= set(names)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_every_expression_in_the_n8n_guide_is_one_the_replay_resolved():
    guide = "\n".join((ROOT / name).read_text(encoding="utf-8") for name in ("docs/n8n.md", "README.md",
                                                                           "docs/api.md"))
    in_files = set()
    for kind in FILES:
        for value in _strings(load(kind)):
            in_files.update(re.findall(r"\{\{.*?\}\}", value, flags=re.S))
    shown = set(re.findall(r"\{\{.*?\}\}", guide, flags=re.S))
    assert shown, "the guide shows expressions"
    assert shown <= in_files, f"expressions in the docs that no replayed file has: {sorted(shown - in_files)}"


async def test_the_replay_notices_a_file_that_drifted_from_the_api(tmp_path, resolver):
    cluster = await _gateway(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            for old, new, error in (('"prompt": {{', '"workflow": {{', "answered 400"),
                                    ("$('Gateway settings').item.json.gateway", "$('Settings').item.json.gateway",
                                     "Referenced node doesn't exist"),
                                    ("/api/prompt", "/api/prompts", "answered 404")):
                workflow = configure(load("wait"), cluster.url, tmp_path / "out")
                submit = next(n for n in workflow["nodes"] if n["name"] == "Submit and wait")
                submit["parameters"] = json.loads(json.dumps(submit["parameters"]).replace(
                    json.dumps(old)[1:-1], json.dumps(new)[1:-1]))
                with pytest.raises(AssertionError, match=re.escape(error)):
                    await Replay(workflow, resolver, session).run()
    finally:
        await cluster.stop()
