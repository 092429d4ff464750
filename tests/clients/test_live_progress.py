"""Live progress through the gateway: the relay on /ws and the status read model."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.fake_comfy import ksampler_workflow, sample_workflow, slow_workflow, websocket_image_workflow
from tests.fake_comfy.testing import WsRecorder, frame_type

FAIL_COLOR = 0x123456


def event_types(recorder: WsRecorder, prompt_id: str) -> list[str]:
    """The frames of one prompt (status frames dropped: the gateway sends the cluster's own)."""
    out = []
    for frame in recorder.frames:
        kind = frame_type(frame)
        if kind == "status":
            continue
        data = frame.get("data") or {}
        if kind.startswith("binary") or data.get("prompt_id") == prompt_id:
            out.append(kind + (":end" if kind == "executing" and data.get("node") is None else ""))
    return out


async def run_direct(session, sim, body: dict, client_id: str, interrupt: bool = False) -> list[str]:
    async with WsRecorder(session, f"{sim.ws_url}?clientId={client_id}") as ws:
        async with session.post(sim.url + "/prompt", json={**body, "client_id": client_id}) as response:
            prompt_id = (await response.json())["prompt_id"]
        if interrupt:
            await ws.wait_for(lambda f: f.get("type") == "executing")
            async with session.post(sim.url + "/interrupt", json={"prompt_id": prompt_id}):
                pass
        await ws.wait_done(prompt_id)
        return event_types(ws, prompt_id)


async def run_gateway(cluster, body: dict, client_id: str, interrupt: bool = False) -> list[str]:
    async with WsRecorder(cluster.session, f"{cluster.url.replace('http', 'ws')}/api/ws?clientId={client_id}") as ws:
        first = ws.frames[0]
        assert first["type"] == "status" and first["data"]["sid"] == client_id
        answer = await cluster.post("/api/prompt", {**body, "client_id": client_id}, expect=200)
        if interrupt:
            await ws.wait_for(lambda f: f.get("type") == "executing")
            await cluster.post("/api/interrupt", {"prompt_id": answer["prompt_id"]})
        await ws.wait_done(answer["prompt_id"])
        return event_types(ws, answer["prompt_id"])


async def test_gateway_relays_the_same_sequence_as_a_direct_connection(cluster, fake_comfy_factory):
    direct = await fake_comfy_factory(node_seconds=0.05)
    behind = await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    for sim in (direct, behind):
        sim.fail_prompt(lambda pid, prompt: prompt.get("1", {}).get("inputs", {}).get("color") == FAIL_COLOR)
    async with aiohttp.ClientSession() as session:
        same = {"prompt": sample_workflow(color=0x0A0B0C)}
        cases = {
            "success": ({"prompt": sample_workflow()}, False),
            "first run": (same, False),
            "cached rerun": (same, False),
            "runtime error": ({"prompt": sample_workflow(color=FAIL_COLOR)}, False),
            "interrupt": ({"prompt": slow_workflow(1.0, node_seconds=0.05)}, True),
        }
        for name, (body, interrupt) in cases.items():
            want = await run_direct(session, direct, body, f"direct-{name}", interrupt)
            got = await run_gateway(cluster, body, f"gw-{name}", interrupt)
            assert got == want, name
            assert got[-1] == "executing:end", name
            expected_event = {"cached rerun": "execution_cached", "runtime error": "execution_error",
                              "interrupt": "execution_interrupted"}.get(name, "execution_success")
            assert expected_event in got, (name, got)


async def test_two_clients_see_only_their_own_events(cluster):
    await cluster.add_sim(node_seconds=0.03)
    await cluster.add_sim(node_seconds=0.03)
    await cluster.wait_online(2)
    base = cluster.url.replace("http", "ws") + "/ws?clientId="
    async with WsRecorder(cluster.session, base + "alice") as alice, \
            WsRecorder(cluster.session, base + "bob") as bob:
        a = await cluster.submit(sample_workflow(), client_id="alice")
        b = await cluster.submit(sample_workflow(), client_id="bob")
        await asyncio.gather(alice.wait_done(a["prompt_id"]), bob.wait_done(b["prompt_id"]))
        workers = {(await cluster.wait_job(p["prompt_id"]))["worker_id"] for p in (a, b)}
        assert len(workers) == 2, "the two jobs ran on different workers"
        for recorder, mine, other in ((alice, a, b), (bob, b, a)):
            ids = {f.get("data", {}).get("prompt_id") for f in recorder.frames if f.get("type") != "status"}
            assert mine["prompt_id"] in ids and other["prompt_id"] not in ids
        assert all(f["data"]["status"]["exec_info"]["queue_remaining"] >= 0
                   for f in alice.frames if f.get("type") == "status")


async def test_preview_frames_follow_each_clients_negotiation(cluster):
    await cluster.add_sim()
    await cluster.wait_online()
    base = cluster.url.replace("http", "ws") + "/ws?clientId="
    async with WsRecorder(cluster.session, base + "legacy") as legacy, \
            WsRecorder(cluster.session, base + "modern") as modern:
        await modern.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        flags = await modern.wait_for(lambda f: f.get("type") == "feature_flags")
        assert flags["data"]["supports_preview_metadata"] is True
        for recorder, client in ((legacy, "legacy"), (modern, "modern")):
            answer = await cluster.submit(websocket_image_workflow(), client_id=client)
            await recorder.wait_done(answer["prompt_id"])
            previews = [f for f in recorder.frames if f.get("binary")]
            assert previews and all(p["payload_is_png"] for p in previews)
            if client == "legacy":
                assert {p["event_type"] for p in previews} == {1}
                assert previews[0]["header"]["image_type"] == 2
            else:
                assert {p["event_type"] for p in previews} == {4}
                assert previews[0]["header"]["metadata"]["prompt_id"] == answer["prompt_id"]


async def test_job_completes_when_the_worker_socket_drops_mid_job(cluster):
    sim = await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    answer = await cluster.submit(slow_workflow(1.5, node_seconds=0.05), client_id="watcher")
    await cluster.wait_job(answer["prompt_id"], states=("running",))
    monitor = cluster.gateway.events.monitors[sim.worker_id]
    connects = monitor.connects
    monitor.reconnect()
    status = await cluster.wait_job(answer["prompt_id"])
    assert status["status"] == "done" and status["progress"]["percent"] == 100.0
    assert monitor.connects > connects, "the monitor reconnected"
    history = await cluster.get(f"/api/history/{answer['prompt_id']}")
    assert history[answer["prompt_id"]]["status"]["status_str"] == "success"


async def test_status_shows_rising_progress_during_a_multi_step_node(cluster):
    await cluster.add_sim(node_seconds=0.05, models={"checkpoints": ["sd15.safetensors"]})
    await cluster.wait_online()
    answer = await cluster.submit(ksampler_workflow(steps=30))
    seen = []
    while True:
        status = await cluster.get(f"/api/task/{answer['prompt_id']}/status")
        if status["status"] == "running" and status["progress"]["node"] == "3":
            seen.append((status["progress"]["value"], status["progress"]["percent"], status["progress"]["max"]))
        if status["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "done" and status["progress"]["percent"] == 100.0
    values = [value for value, _, _ in seen]
    assert len(set(values)) >= 5, seen
    assert values == sorted(values), "progress never goes backwards"
    assert seen[-1][1] > seen[0][1]
    assert {maximum for _, _, maximum in seen} <= {0, 30} and 30 in {m for _, _, m in seen}
