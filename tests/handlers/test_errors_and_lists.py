"""Errors never hang and never blame the client wrongly; job list paging; webhooks; Redis mirroring."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.fake_comfy import sample_workflow, slow_workflow
from tests.harness import Cluster, webhook_receiver
from tests.store.services import require_redis


@pytest.fixture
async def impatient_cluster(tmp_path):
    """A gateway that waits 1 s for workers and keeps them online through many failed checks."""
    cluster = Cluster(tmp_path / "gw", WORKER_REQUEST_TIMEOUT="1", GATEWAY_OFFLINE_AFTER="50")
    await cluster.start()
    yield cluster
    await cluster.stop()


async def test_hanging_or_garbage_worker_answers_502_504_not_a_hang(impatient_cluster):
    cluster = impatient_cluster
    sim = await cluster.add_sim()
    await cluster.wait_online()
    sim.hang_http = True
    started = time.monotonic()
    status, body = await cluster.request("GET", "/api/features")
    assert status == 504 and body["error"]["type"] == "worker_timeout"
    assert time.monotonic() - started < 5
    sim.hang_http = False
    sim.garbage_http = True
    status, body = await cluster.request("GET", "/api/features")
    assert status == 502 and body["error"]["type"] == "worker_bad_answer"
    sim.garbage_http = False


async def test_submit_to_a_hanging_worker_is_queued_not_lost(impatient_cluster):
    cluster = impatient_cluster
    sim = await cluster.add_sim()
    await cluster.wait_online()
    sim.hang_http = True
    started = time.monotonic()
    answer = await cluster.submit(sample_workflow())
    assert time.monotonic() - started < 5
    status = await cluster.get(f"/api/task/{answer['prompt_id']}/status")
    assert status["status"] in ("queued",)
    sim.hang_http = False
    assert (await cluster.wait_job(answer["prompt_id"], timeout=20))["status"] == "done"


async def test_no_worker_and_unknown_things(cluster):
    status, body = await cluster.request("POST", "/api/prompt", json={"prompt": sample_workflow()})
    assert status == 503 and body["error"]["type"] == "worker_unavailable"
    status, body = await cluster.request("GET", "/api/task/nope/status")
    assert status == 404 and body["error"]["type"] == "not_found"
    status, body = await cluster.request("GET", "/api/no/such/route")
    assert status == 404 and body["error"]["type"] == "not_found"
    status, body = await cluster.request("GET", "/api/tasks?state=sleeping")
    assert status == 400 and body["error"]["field"] == "state"
    status, body = await cluster.request("GET", "/api/tasks?limit=0")
    assert status == 400 and body["error"]["field"] == "limit"
    status, body = await cluster.request("PATCH", "/api/settings", json={"port": 1})
    assert status == 400 and body["error"]["field"] == "port"
    status, body = await cluster.request("PATCH", "/api/settings", json={"worker_request_timeout": -3})
    assert status == 400 and "worker_request_timeout" in body["error"]["message"]
    assert (await cluster.get("/healthz"))["status"] == "ok"


async def test_runtime_settings_are_saved_and_survive_a_restart(cluster):
    answer = await cluster.request("PATCH", "/api/settings", json={"max_retries": 3, "worker_auth_password": "pw"})
    assert answer[0] == 200 and answer[1]["settings"]["max_retries"] == 3
    assert answer[1]["settings"]["worker_auth_password_set"] is True and "pw" not in json.dumps(answer[1])
    await cluster.restart_gateway()
    view = await cluster.get("/api/settings")
    assert view["settings"]["max_retries"] == 3


async def test_task_list_pages_and_filters(cluster):
    sims = [await cluster.add_sim(), await cluster.add_sim()]
    await cluster.wait_online(2)
    answers = [await cluster.submit(sample_workflow(), client_id="lister" if i % 2 else None) for i in range(7)]
    for answer in answers:
        await cluster.wait_job(answer["prompt_id"])
    page = await cluster.get("/api/tasks?limit=3&offset=0")
    assert page["total"] == 7 and len(page["items"]) == 3
    assert page["items"][0]["prompt_id"] == answers[-1]["prompt_id"], "newest first"
    rest = await cluster.get("/api/tasks?limit=10&offset=3")
    assert [i["prompt_id"] for i in page["items"] + rest["items"]] == [a["prompt_id"] for a in reversed(answers)]
    mine = await cluster.get("/api/tasks?client_id=lister")
    assert mine["total"] == 3
    done = await cluster.get("/api/tasks?state=done&worker=" + str(sims[0].worker_id))
    assert done["total"] == len(sims[0].executed)
    history = await cluster.get("/history?max_items=2")
    assert list(history) == [a["prompt_id"] for a in answers[-2:]]


async def test_webhook_gets_the_finished_job(cluster, unused_tcp_port):
    received: list = []
    runner = await webhook_receiver(unused_tcp_port, received)
    try:
        await cluster.add_sim()
        await cluster.wait_online()
        status, body = await cluster.request("POST", "/api/prompt", json={"prompt": sample_workflow(),
                                                                          "webhook": "not a url"})
        assert status == 400 and body["error"]["field"] == "webhook"
        answer = await cluster.submit(sample_workflow(), webhook=f"http://127.0.0.1:{unused_tcp_port}/hook")
        await cluster.wait_job(answer["prompt_id"])
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.05)
        assert received[0]["event"] == "job_finished"
        assert received[0]["job"]["prompt_id"] == answer["prompt_id"] and received[0]["job"]["status"] == "done"
    finally:
        await runner.cleanup()


async def test_worker_load_and_job_events_are_mirrored_to_redis(tmp_path):
    url = require_redis()
    prefix = f"gw-test-{time.time_ns()}:"
    cluster = Cluster(tmp_path / "gw", REDIS_URL=url, GATEWAY_REDIS_PREFIX=prefix)
    await cluster.start()
    import redis.asyncio as aioredis
    client = aioredis.from_url(url, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe(prefix + "events")
    try:
        sim = await cluster.add_sim()
        await cluster.wait_online()
        answer = await cluster.submit(sample_workflow())
        await cluster.wait_job(answer["prompt_id"])
        await asyncio.sleep(0.3)
        stored = json.loads(await client.get(f"{prefix}worker:{sim.worker_id}"))
        assert stored["url"] == sim.url and stored["state"] == "online"
        assert 0 < await client.ttl(f"{prefix}worker:{sim.worker_id}") <= 5
        events = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                events.append(json.loads(message["data"]))
        assert any(e["kind"] == "job" and e["prompt_id"] == answer["prompt_id"] and e["state"] == "done"
                   for e in events)
    finally:
        await pubsub.aclose()
        keys = [key async for key in client.scan_iter(prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await cluster.stop()


async def test_a_job_the_store_cannot_write_is_refused_and_never_sent(cluster):
    import sqlite3
    sim = await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    database = sqlite3.connect(cluster.gateway.settings.data_path / "gateway.sqlite3", isolation_level=None)

    async def refused(failure: str) -> tuple[int, dict]:
        # The real database file refuses the write: a runtime error, or a clash on the id (as when a
        # second gateway on the same MySQL database stored the id first).
        database.execute(f"CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs BEGIN {failure}; END")
        try:
            return await cluster.request("POST", "/prompt", json={"prompt": sample_workflow()})
        finally:
            database.execute("DROP TRIGGER refuse_jobs")

    broken = "SELECT abs(-9223372036854775808)"  # SQLite fails it with "integer overflow"
    clash = "SELECT RAISE(ABORT, 'UNIQUE constraint failed: jobs.prompt_id')"
    try:
        # The worker is idle: the fast path would have forwarded these at once.
        status, body = await refused(broken)
        assert status == 503, body
        assert body["error"]["type"] == "store_unavailable" and "not accepted" in body["error"]["message"]
        assert "overflow" not in body["error"]["message"], "database details stay in the log"
        status, body = await refused(clash)
        assert (status, body) == (409, {"error": "prompt_id already exists"})
        assert not cluster.gateway.jobs.active, "nothing unaccepted stays in memory"
        assert cluster.gateway.registry.get(sim.worker_id).sent_since_report == 0, "the claims were given back"
        history = await (await cluster.session.get(sim.url + "/history")).json()
        assert history == {}, "the worker never got the jobs"
        # The worker is busy: the jobs would have waited in the gateway.
        busy = await cluster.submit(slow_workflow(0.5, node_seconds=0.05))
        status, body = await refused(broken)
        assert status == 503 and body["error"]["type"] == "store_unavailable", body
        status, body = await refused(clash)
        assert status == 409, body
        assert list(cluster.gateway.jobs.active) == [busy["prompt_id"]]
        queue = await cluster.get("/queue")
        assert [item[1] for item in queue["queue_running"] + queue["queue_pending"]] == [busy["prompt_id"]]
        await cluster.wait_job(busy["prompt_id"], timeout=10)
        history = await (await cluster.session.get(sim.url + "/history")).json()
        assert list(history) == [busy["prompt_id"]], "refused jobs never reach the worker"
    finally:
        database.close()
    answer = await cluster.submit(sample_workflow())
    assert (await cluster.wait_job(answer["prompt_id"], timeout=10))["status"] == "done"


async def test_client_mistakes_are_400_even_with_no_worker_online(cluster):
    for body, error_type in (({"prompt": {}}, "prompt_no_outputs"), ({}, "no_prompt"),
                             ({"prompt": {"1": {"inputs": {}}}}, "invalid_prompt")):
        status, answer = await cluster.request("POST", "/prompt", json=body)
        assert status == 400 and answer["error"]["type"] == error_type, (body, status, answer)
        assert answer["node_errors"] == {}
    status, answer = await cluster.request("POST", "/prompt", json={"prompt": sample_workflow()})
    assert status == 503 and answer["error"]["type"] == "worker_unavailable"
