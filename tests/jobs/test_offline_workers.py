"""The queue does not depend on a live worker: jobs accepted while every worker is offline run when one
returns, checked against the node lists the workers had; queue_timeout fails those that wait too long."""

from __future__ import annotations

import asyncio

from tests.fake_comfy import sample_workflow


async def wait_state(cluster, state: str, timeout: float = 10.0) -> dict:
    for _ in range(int(timeout / 0.05)):
        workers = await cluster.get("/api/workers")
        if workers and all(w["state"] == state for w in workers):
            return workers
        await asyncio.sleep(0.05)
    raise AssertionError(f"workers never all {state}: {workers}")


async def test_jobs_wait_for_a_worker_that_is_offline_even_across_a_restart(cluster):
    status, answer = await cluster.request("POST", "/api/prompt", json={"prompt": sample_workflow()})
    assert status == 503 and "no worker is registered" in answer["error"]["message"]
    sim = await cluster.add_sim()
    await cluster.wait_online()
    await sim.crash()  # the GPU box reboots at night
    await wait_state(cluster, "offline")
    await cluster.restart_gateway()  # and the gateway restarts meanwhile: the node list comes from the store
    workers = await cluster.get("/api/workers")
    assert workers[0]["state"] == "offline" and workers[0]["node_types"], workers
    accepted = [await cluster.submit(sample_workflow()) for _ in range(3)]
    status, refused = await cluster.request("POST", "/api/prompt", json={"prompt": {
        "1": {"class_type": "NoSuchNode", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {
            "images": ["1", 0], "filename_prefix": "x"}}}})
    assert status == 400 and "NoSuchNode" in str(refused)
    status, refused = await cluster.request("POST", "/api/prompt", json={"prompt": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": "wide", "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}})
    assert status == 400 and refused["node_errors"]["1"], "checked against the last known node list"
    for job in accepted:
        assert (await cluster.get(f"/api/task/{job['prompt_id']}/status"))["status"] == "queued"
    await sim.restart()
    for job in accepted:
        assert (await cluster.wait_job(job["prompt_id"]))["status"] == "done"
    assert sorted(sim.executed) == sorted(job["prompt_id"] for job in accepted)


async def test_queue_timeout_fails_jobs_that_waited_too_long(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    answer = await cluster.request("PATCH", "/api/settings", json={"queue_timeout": 0.5})
    assert answer[0] == 200 and answer[1]["settings"]["queue_timeout"] == 0.5
    await sim.crash()
    await wait_state(cluster, "offline")
    job = await cluster.submit(sample_workflow())
    final = await cluster.wait_job(job["prompt_id"], timeout=10)
    assert final["status"] == "failed" and final["error"]["type"] == "queue_timeout", final
    await cluster.request("PATCH", "/api/settings", json={"queue_timeout": 0})
    kept = await cluster.submit(sample_workflow())
    await asyncio.sleep(1.0)
    assert (await cluster.get(f"/api/task/{kept['prompt_id']}/status"))["status"] == "queued"
    await sim.restart()
    assert (await cluster.wait_job(kept["prompt_id"]))["status"] == "done"
    assert job["prompt_id"] not in sim.executed
