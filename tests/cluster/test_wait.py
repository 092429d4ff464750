"""Wait mode and the status long poll on an instance that does not dispatch (every gateway its own process):
the job goes through the dispatcher, the follower's replica wakes the waiting client, and the history with
its file urls comes from the store."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.fake_comfy import sample_workflow, slow_workflow
from tests.harness import free_port, webhook_receiver


async def _waiting(nodes, name: str) -> float:
    async with nodes.session.get(nodes.url(name) + "/metrics") as response:
        text = await response.text()
    return float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith("comfyui_gateway_waiting_requests ")))


async def test_a_client_waits_on_a_follower_for_a_job_the_dispatcher_runs(nodes):
    await nodes.start("a", "b")
    sim = await nodes.add_sim("a", node_seconds=0.004)
    await nodes.wait_workers_online(("a", "b"), 1)
    assert await nodes.dispatcher() == "a"

    # Wait mode on the follower: the answer carries the outputs and working download urls.
    status, answer = await nodes.request("b", "POST", "/api/prompt", json={"prompt": sample_workflow(), "wait": 30})
    assert status == 200 and answer["state"] == "done", (answer, nodes.logs())
    (file,) = answer["files"]
    assert file["url"].startswith(nodes.url("b") + "/api/view?")
    assert answer["outputs"]["4"]["images"][0]["url"] == file["url"]
    async with nodes.session.get(file["url"]) as response:
        assert await response.read() == (sim.output_dir / file["subfolder"] / file["filename"]).read_bytes()
    assert sim.executed.count(answer["prompt_id"]) == 1

    # A job sent through the dispatcher, followed on the follower with long polls.
    job = await nodes.submit("a", slow_workflow(1.0, node_seconds=0.004))
    seen = [(await nodes.get("b", f"/api/task/{job['prompt_id']}/status"))["state"]]
    while seen[-1] not in ("done", "failed"):
        body = await nodes.get("b", f"/api/task/{job['prompt_id']}/status?wait=30")
        assert body["state"] != seen[-1], seen
        seen.append(body["state"])
    assert seen[-1] == "done", seen

    # A failed job ends the follower's wait too.
    sim.fail_prompt(lambda prompt_id, prompt: prompt["1"]["inputs"]["color"] == 0x123456)
    status, failed = await nodes.request("b", "POST", "/api/prompt?wait=30",
                                         json={"prompt": sample_workflow(color=0x123456)})
    assert status == 200 and failed["state"] == "failed" and failed["error"], failed

    # A client that hangs up on the follower leaves the job running.
    try:
        await nodes.session.post(nodes.url("b") + "/api/prompt", json={"prompt": slow_workflow(1.0, 0.004),
                                                                       "wait": 30},
                                 timeout=aiohttp.ClientTimeout(total=0.3))
        raise AssertionError("the wait should have outlasted the client")
    except asyncio.TimeoutError:
        pass
    deadline = time.monotonic() + 10
    while await _waiting(nodes, "b") != 0:
        assert time.monotonic() < deadline, "the follower still holds a wait for a client that left"
        await asyncio.sleep(0.05)
    last = (await nodes.get("a", "/api/tasks?limit=1"))["items"][0]
    assert last["class_types"] == ["EmptyImage", "ImagePadForOutpaint", "SaveImage"]
    assert (await nodes.wait_job("b", last["prompt_id"]))["status"] == "done"
    assert sim.executed.count(last["prompt_id"]) == 1


async def test_the_dispatcher_sends_the_webhook_of_a_job_accepted_by_a_follower(nodes):
    received: list = []
    port = free_port()
    runner = await webhook_receiver(port, received)
    try:
        await nodes.start("a", "b")
        await nodes.add_sim("a", node_seconds=0.004)
        await nodes.wait_workers_online(("a", "b"), 1)
        assert await nodes.dispatcher() == "a"
        job = await nodes.submit("b", sample_workflow(), webhook=f"http://127.0.0.1:{port}/hook")
        deadline = time.monotonic() + 20
        while not received:
            assert time.monotonic() < deadline, nodes.logs()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a second delivery (from the follower) would arrive meanwhile
        assert len(received) == 1, received
        body = received[0]
        assert body["prompt_id"] == job["prompt_id"] and body["state"] == "done"
        # Without public_url the links name the instance that sent them, which serves every file too.
        assert body["files"][0]["url"].startswith(nodes.url("a") + "/api/view?")
        async with nodes.session.get(body["files"][0]["url"]) as response:
            assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")
    finally:
        await runner.cleanup()
