"""Wait mode (POST /api/prompt with wait) and the status long poll: success, failure, timeout, a client
that hangs up (the job runs on), bad values, the configured bound, and the webhook body with file urls."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.fake_comfy import sample_workflow, slow_workflow
from tests.harness import Cluster, webhook_receiver


async def _online(cluster: Cluster, **sim_kwargs):
    sim = await cluster.add_sim(**sim_kwargs)
    await cluster.wait_online()
    return sim


async def _waiting_gauge(cluster: Cluster) -> float:
    text = await (await cluster.session.get(cluster.url + "/metrics")).text()
    line = next(line for line in text.splitlines() if line.startswith("comfyui_gateway_waiting_requests "))
    return float(line.split()[1])


async def _until_no_waiter(cluster: Cluster, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while await _waiting_gauge(cluster) != 0:
        assert time.monotonic() < deadline, "a request that went away still waits"
        await asyncio.sleep(0.05)
    assert cluster.gateway.waits._waiters == {}


async def test_wait_mode_answers_with_the_finished_job_and_its_files(cluster):
    sim = await _online(cluster)
    status, answer = await cluster.request("POST", "/api/prompt", json={"prompt": sample_workflow(), "wait": 30})
    assert status == 200, answer
    assert answer["state"] == "done" and answer["node_errors"] == {} and isinstance(answer["number"], int)
    assert answer["status"]["status_str"] == "success" and answer["status"]["completed"] is True
    assert answer["job"]["status"] == "done" and answer["job"]["prompt_id"] == answer["prompt_id"]
    assert answer["error"] is None and "meta" in answer
    image = answer["outputs"]["4"]["images"][0]
    assert image["url"].startswith(cluster.url + "/api/view?") and f"prompt_id={answer['prompt_id']}" in image["url"]
    (file,) = answer["files"]
    assert file == {"node": "4", "kind": "images", "filename": image["filename"], "subfolder": image["subfolder"],
                    "type": "output", "url": image["url"]}
    async with cluster.session.get(file["url"]) as download:
        assert download.status == 200
        body = await download.read()
    assert body == (sim.output_dir / file["subfolder"] / file["filename"]).read_bytes()
    # The same entry as history, which a client may still ask for.
    history = (await cluster.get(f"/api/history/{answer['prompt_id']}"))[answer["prompt_id"]]
    assert history["outputs"] == answer["outputs"] and history["status"] == answer["status"]


async def test_wait_in_the_query_and_priority_keep_the_submit_answer(cluster):
    await _online(cluster)
    status, answer = await cluster.request("POST", "/api/prompt?wait=30",
                                           json={"prompt": sample_workflow(), "priority": 5})
    assert status == 200 and answer["state"] == "done", answer
    assert answer["gateway_job_id"] and answer["job"]["priority"] == 5


async def test_wait_mode_reports_a_failed_job(cluster):
    sim = await _online(cluster)
    sim.fail_prompt(lambda prompt_id: True)
    status, answer = await cluster.request("POST", "/api/prompt", json={"prompt": sample_workflow(), "wait": 30})
    assert status == 200, answer
    assert answer["state"] == "failed" and answer["job"]["status"] == "failed"
    assert answer["status"]["status_str"] == "error" and answer["status"]["completed"] is False
    assert answer["error"]["type"] and answer["error"]["message"], answer["error"]
    assert answer["files"] == []


async def test_a_cancelled_job_ends_the_wait_as_failed(cluster):
    await _online(cluster)
    await cluster.post("/api/dispatch", {"paused": True})
    waiting = asyncio.ensure_future(cluster.request("POST", "/api/prompt",
                                                    json={"prompt": sample_workflow(), "wait": 30}))
    while not cluster.gateway.jobs.waiting():
        await asyncio.sleep(0.02)
    (job,) = cluster.gateway.jobs.waiting()
    await cluster.request("POST", "/api/queue", json={"delete": [job.prompt_id]})
    status, answer = await waiting
    assert status == 200 and answer["state"] == "failed", answer
    assert answer["error"]["type"] == "cancelled" and answer["outputs"] == {} and answer["files"] == []
    assert answer["status"] == {"status_str": "error", "completed": False, "messages": []}


async def test_wait_mode_times_out_with_the_current_status_then_the_long_poll_follows(cluster):
    await _online(cluster)
    status, answer = await cluster.request("POST", "/api/prompt",
                                           json={"prompt": slow_workflow(1.5), "wait": 0.2})
    assert status == 202, answer
    assert answer["state"] in ("queued", "submitted", "running") and answer["job"]["status"] in ("queued", "running")
    assert "outputs" not in answer and answer["prompt_id"] and answer["node_errors"] == {}
    seen = [answer["job"]["state"]]
    while seen[-1] not in ("done", "failed"):
        body = await cluster.get(f"/api/task/{answer['prompt_id']}/status?wait=30")
        assert body["state"] != seen[-1], (seen, body)  # a long poll answers on a change, not before
        seen.append(body["state"])
    assert seen[-1] == "done" and len(seen) <= 4, seen
    # A finished job's long poll answers at once.
    body = await cluster.get(f"/api/task/{answer['prompt_id']}/status?wait=30")
    assert body["status"] == "done"


async def test_the_long_poll_follows_a_job_to_its_failure(cluster):
    sim = await _online(cluster)
    sim.fail_prompt(lambda prompt_id: True)
    await cluster.post("/api/dispatch", {"paused": True})
    answer = await cluster.submit(sample_workflow())
    polls = [asyncio.ensure_future(cluster.get(f"/api/task/{answer['prompt_id']}/status?wait=30"))]
    while cluster.gateway.waits.count == 0:
        await asyncio.sleep(0.02)
    await cluster.post("/api/dispatch", {"paused": False})
    seen = ["queued"]
    while seen[-1] not in ("done", "failed"):
        body = await polls.pop()
        assert body["state"] != seen[-1], (seen, body)
        seen.append(body["state"])
        polls.append(asyncio.ensure_future(cluster.get(f"/api/task/{answer['prompt_id']}/status?wait=30")))
    assert seen[-1] == "failed" and body["error"]["type"], (seen, body)
    assert (await polls.pop())["status"] == "failed"  # asked again: answered at once


async def test_the_long_poll_times_out_with_the_state_unchanged(cluster):
    await _online(cluster)
    await cluster.post("/api/dispatch", {"paused": True})
    answer = await cluster.submit(sample_workflow())
    body = await cluster.get(f"/api/task/{answer['prompt_id']}/status?wait=0.3")
    assert body["state"] == "queued" and body["queue_position"] == 1
    await cluster.post("/api/dispatch", {"paused": False})
    assert (await cluster.wait_job(answer["prompt_id"]))["status"] == "done"


async def test_waits_are_cut_to_max_wait_seconds(tmp_path):
    cluster = Cluster(tmp_path / "gw", GATEWAY_MAX_WAIT_SECONDS="0.3")
    await cluster.start()
    try:
        await _online(cluster)
        await cluster.post("/api/dispatch", {"paused": True})
        status, answer = await cluster.request("POST", "/api/prompt",
                                               json={"prompt": sample_workflow(), "wait": 600})
        assert status == 202 and answer["state"] == "queued", answer
        body = await cluster.get(f"/api/task/{answer['prompt_id']}/status?wait=600")
        assert body["state"] == "queued"
        assert cluster.gateway.waits.bound(600) == 0.3
    finally:
        await cluster.stop()


async def test_a_client_that_hangs_up_cancels_its_wait_not_the_job(cluster):
    await _online(cluster)
    workflow = slow_workflow(1.0)
    timeout = aiohttp.ClientTimeout(total=0.3)
    try:
        await cluster.session.post(cluster.url + "/api/prompt", json={"prompt": workflow, "wait": 30},
                                   timeout=timeout)
        raise AssertionError("the wait should have outlasted the client")
    except asyncio.TimeoutError:
        pass  # aiohttp closed the connection
    await _until_no_waiter(cluster)
    (job,) = list(cluster.gateway.jobs.active.values()) or list(cluster.gateway.jobs.recent.values())
    assert (await cluster.wait_job(job.prompt_id))["status"] == "done"
    # The same for a long poll.
    await cluster.post("/api/dispatch", {"paused": True})
    answer = await cluster.submit(sample_workflow())
    try:
        await cluster.session.get(f"{cluster.url}/api/task/{answer['prompt_id']}/status?wait=30", timeout=timeout)
        raise AssertionError("the long poll should have outlasted the client")
    except asyncio.TimeoutError:
        pass
    await _until_no_waiter(cluster)
    await cluster.post("/api/dispatch", {"paused": False})
    assert (await cluster.wait_job(answer["prompt_id"]))["status"] == "done"


async def test_bad_waits_are_refused_before_anything_is_queued(cluster):
    await _online(cluster)
    for body, query in (({"wait": -1}, ""), ({"wait": "soon"}, ""), ({"wait": True}, ""), ({}, "?wait=abc"),
                        ({}, "?wait=-2"), ({"wait": 5}, "?wait=6")):
        status, answer = await cluster.request("POST", "/api/prompt" + query,
                                               json={"prompt": sample_workflow(), **body})
        assert status == 400 and answer["error"]["field"] == "wait", (body, query, answer)
    assert (await cluster.get("/api/tasks"))["total"] == 0
    answer = await cluster.submit(sample_workflow())
    status, body = await cluster.request("GET", f"/api/task/{answer['prompt_id']}/status?wait=nan")
    assert status == 400 and body["error"]["field"] == "wait"
    status, body = await cluster.request("GET", "/api/task/no-such-job/status?wait=5")
    assert status == 404


async def test_shutdown_answers_waiting_requests(tmp_path):
    cluster = Cluster(tmp_path / "gw")
    await cluster.start()
    try:
        await _online(cluster)
        await cluster.post("/api/dispatch", {"paused": True})
        waiting = asyncio.ensure_future(cluster.request("POST", "/api/prompt",
                                                        json={"prompt": sample_workflow(), "wait": 60}))
        while cluster.gateway.waits.count == 0:
            await asyncio.sleep(0.02)
        await cluster.gateway.stop()
        status, answer = await waiting
        assert status == 202 and answer["state"] == "queued", answer
    finally:
        cluster.gateway.server = None  # stopped above
        await cluster.session.close()
        for sim in cluster.sims:
            await sim.stop()
            sim.cleanup()




async def _webhook_body(cluster: Cluster, port: int, received: list) -> dict:
    answer = await cluster.submit(sample_workflow(), webhook=f"http://127.0.0.1:{port}/hook")
    deadline = time.monotonic() + 20
    while not received:
        assert time.monotonic() < deadline, "no webhook arrived"
        await asyncio.sleep(0.05)
    assert received[0]["prompt_id"] == answer["prompt_id"]
    return received[0]


async def test_the_webhook_carries_the_files_with_urls_to_the_public_address(tmp_path, unused_tcp_port):
    received: list = []
    runner = await webhook_receiver(unused_tcp_port, received)
    cluster = Cluster(tmp_path / "gw", GATEWAY_PUBLIC_URL="https://gateway.studio.example/")
    await cluster.start()
    try:
        sim = await _online(cluster)
        body = await _webhook_body(cluster, unused_tcp_port, received)
        assert body["event"] == "job_finished" and body["state"] == "done"
        assert body["job"]["status"] == "done" and body["status"]["status_str"] == "success"
        (file,) = body["files"]
        assert file["url"].startswith("https://gateway.studio.example/api/view?filename=")
        assert body["outputs"]["4"]["images"][0]["url"] == file["url"]
        # The url works against the gateway once its address is put in front of the path.
        path = file["url"][len("https://gateway.studio.example"):]
        async with cluster.session.get(cluster.url + path) as download:
            assert await download.read() == (sim.output_dir / file["subfolder"] / file["filename"]).read_bytes()
    finally:
        await cluster.stop()
        await runner.cleanup()


async def test_without_public_url_webhook_urls_use_the_bound_address(cluster, unused_tcp_port):
    received: list = []
    runner = await webhook_receiver(unused_tcp_port, received)
    try:
        await _online(cluster)
        body = await _webhook_body(cluster, unused_tcp_port, received)
        assert body["files"][0]["url"].startswith(cluster.url + "/api/view?")
    finally:
        await runner.cleanup()
