"""Several gateways on one MariaDB + Redis, each its own process: one cluster that any instance may leave.

Workers, jobs, client events and files are shared; exactly one instance dispatches; a dispatcher that
dies (kill -9) or stalls (SIGSTOP) loses nothing and runs nothing twice; Redis may stop and come back.
"""

from __future__ import annotations

import asyncio
import io
import signal
import time
import uuid
from collections import Counter

import aiohttp
import pytest
from PIL import Image

from tests.fake_comfy import sample_workflow, transform_workflow
from tests.fake_comfy.testing import WsRecorder, frame_type
from tests.store.services import require_redis, temporary_mysql_database

from .helpers import LEASE_SECONDS, Nodes, RedisServer, TcpProxy


def ws_url(http_url: str, client_id: str) -> str:
    return http_url.replace("http://", "ws://") + f"/ws?clientId={client_id}"


def events_of(frames: list, prompt_id: str) -> list[str]:
    """The event types of one prompt, in the order a client saw them (status frames left out)."""
    return [frame_type(f) for f in frames
            if isinstance(f, dict) and not f.get("binary") and (f.get("data") or {}).get("prompt_id") == prompt_id]


def runs(sims) -> Counter:
    return Counter(pid for sim in sims for pid in sim.executed)


@pytest.mark.parametrize("count", [2, 3])
async def test_instances_share_workers_jobs_events_and_files(nodes, count):
    names = ("a", "b", "c")[:count]
    await nodes.start(*names)
    sims = [await nodes.add_sim("a", node_seconds=0.004) for _ in range(2)]
    seconds = await nodes.wait_workers_online(names, 2, timeout=6.0)
    print(f"workers registered on a online on all {count} instances after {seconds:.2f} s")
    assert await nodes.dispatcher() == "a"
    for name in names:
        described = await nodes.get(name, "/api/cluster")
        assert described["mode"] == "cluster" and described["bus"]["up"]
        assert described["lease"]["holder_name"] == "a"

    # 60 jobs round-robin over the instances: each runs exactly once, and every instance reports it done.
    answers = await asyncio.gather(*(nodes.submit(names[i % count], sample_workflow()) for i in range(60)))
    ids = [a["prompt_id"] for a in answers]
    assert len(set(ids)) == 60 and len({a["number"] for a in answers}) == 60
    for index, prompt_id in enumerate(ids):
        assert (await nodes.wait_job(names[(index + 1) % count], prompt_id))["status"] == "done"
    assert runs(sims) == Counter({pid: 1 for pid in ids}), nodes.logs()

    # A client connected to b follows a job sent through a, in ComfyUI's order.
    async with aiohttp.ClientSession() as session:
        direct = await WsRecorder(session, sims[0].ws_url + "?clientId=direct").connect()
        async with session.post(sims[0].url + "/prompt", json={"prompt": sample_workflow(), "client_id": "direct"}) as r:
            direct_id = (await r.json())["prompt_id"]
        await direct.wait_done(direct_id)
        follower = await WsRecorder(session, ws_url(nodes.url("b"), "watcher")).connect()
        job = await nodes.submit("a", sample_workflow(), client_id="watcher")
        await follower.wait_done(job["prompt_id"], timeout=20)
        assert events_of(follower.frames, job["prompt_id"]) == events_of(direct.frames, direct_id)
        await follower.close()
        await direct.close()

        # History and files answer on every instance.
        for name in names:
            history = (await nodes.get(name, f"/api/history/{job['prompt_id']}"))[job["prompt_id"]]
            image = history["outputs"]["4"]["images"][0]
            assert image["url"].startswith(nodes.url(name))
            async with session.get(image["url"]) as response:
                assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")
            async with session.get(nodes.url(name) + "/api/view", params={
                    "filename": image["filename"], "subfolder": image["subfolder"], "type": "output"}) as response:
                assert response.status == 200
            assert (await nodes.get(name, f"/api/task/{job['prompt_id']}/status"))["status"] == "done"

    # A worker changed or removed on any instance shows so on every instance.
    last = names[-1]
    status, _ = await nodes.request(last, "PATCH", f"/api/workers/{sims[0].worker_id}", json={"draining": True})
    assert status == 200
    await wait_everywhere(nodes, names, lambda workers: any(w["state"] == "draining" for w in workers))
    status, _ = await nodes.request("b", "DELETE", f"/api/workers/{sims[1].worker_id}")
    assert status == 200
    await wait_everywhere(nodes, names, lambda workers: [w["id"] for w in workers] == [sims[0].worker_id])


async def wait_everywhere(nodes, names, check, timeout: float = 5.0) -> None:
    """Wait until check(workers listed by the instance) holds on every named instance."""
    deadline = time.monotonic() + timeout
    for name in names:
        while not check(await nodes.get(name, "/api/workers")):
            assert time.monotonic() < deadline, f"{name}: {await nodes.get(name, '/api/workers')}"
            await asyncio.sleep(0.05)


async def test_dispatcher_killed_loses_nothing_and_runs_nothing_twice(nodes):
    await nodes.start("a", "b")
    sims = [await nodes.add_sim("a", node_seconds=0.04) for _ in range(2)]
    await nodes.wait_workers_online(("a", "b"), 2)
    assert await nodes.dispatcher() == "a"
    answers = await asyncio.gather(*(nodes.submit(("a", "b")[i % 2], sample_workflow(size=256))
                                     for i in range(40)))
    ids = [a["prompt_id"] for a in answers]
    await asyncio.sleep(1.0)  # some done, two running, the rest waiting in the gateway
    assert 0 < sum(runs(sims).values()) < 40
    killed = time.monotonic()
    nodes.kill("a")
    assert await nodes.dispatcher(among=("b",), timeout=LEASE_SECONDS + 5) == "b"
    print(f"b dispatches {time.monotonic() - killed:.2f} s after kill -9 of a (lease {LEASE_SECONDS} s)")
    for prompt_id in ids:
        assert (await nodes.wait_job("b", prompt_id, timeout=60))["status"] == "done", nodes.logs()
    assert runs(sims) == Counter({pid: 1 for pid in ids}), nodes.logs()


async def test_a_stalled_dispatcher_sends_nothing_after_it_wakes(nodes):
    await nodes.start("a", "b")
    sim = await nodes.add_sim("a", node_seconds=0.05)
    await nodes.wait_workers_online(("a", "b"), 1)
    answers = [await nodes.submit("b", sample_workflow(size=256)) for _ in range(20)]
    await asyncio.sleep(0.8)
    nodes.kill("a", signal.SIGSTOP)
    assert await nodes.dispatcher(among=("b",), timeout=LEASE_SECONDS + 5) == "b"
    await asyncio.sleep(1.0)
    # A send a wrote in the instant before the signal took effect may still reach the worker after the
    # kill() call returned; what a writes once it runs again is what the lease must stop.
    resumed = time.time()
    nodes.kill("a", signal.SIGCONT)
    await asyncio.sleep(LEASE_SECONDS)  # a wakes up with its lease long gone
    assert (await nodes.get("a", "/healthz"))["role"] == "follower"
    for answer in answers:
        assert (await nodes.wait_job("a", answer["prompt_id"], timeout=60))["status"] == "done"
    late = [post for post in sim.prompt_posts if post[0] > resumed and "(a)" in (post[2] or "")]
    assert late == [], f"a sent after it woke up: {late}\n{nodes.logs()}"
    assert any("(b)" in (post[2] or "") for post in sim.prompt_posts)
    assert runs([sim]) == Counter({a["prompt_id"]: 1 for a in answers}), nodes.logs()


async def test_redis_may_stop_and_come_back(tmp_path, mysql_database):
    require_redis()  # the machine's Redis proves redis-py works; this test runs its own server
    redis = RedisServer(tmp_path / "redis").start()
    nodes = Nodes(tmp_path, mysql_database, redis.url)
    try:
        await nodes.start("a", "b")
        sims = [await nodes.add_sim("a", node_seconds=0.004) for _ in range(2)]
        await nodes.wait_workers_online(("a", "b"), 2)
        redis.stop()
        async with aiohttp.ClientSession() as session:
            # Redis away: jobs are accepted on both instances and run; a client on b still learns when
            # its job (sent through a) starts and ends, from the store.
            watcher = await WsRecorder(session, ws_url(nodes.url("b"), "w1")).connect()
            answers = [await nodes.submit(("a", "b")[i % 2], sample_workflow()) for i in range(10)]
            followed = await nodes.submit("a", sample_workflow(), client_id="w1")
            for answer in [*answers, followed]:
                assert (await nodes.wait_job("b", answer["prompt_id"]))["status"] == "done", nodes.logs()
            await watcher.wait_done(followed["prompt_id"], timeout=10)
            assert events_of(watcher.frames, followed["prompt_id"])[-2:] == ["execution_success", "executing"]
            await watcher.close()

            redis.start()
            deadline = time.monotonic() + 15
            while not all([(await nodes.get(n, "/api/cluster"))["bus"]["up"] for n in ("a", "b")]):
                assert time.monotonic() < deadline, "the instances did not reconnect to Redis"
                await asyncio.sleep(0.1)
            # Events flow again: every event of a job sent through a reaches a client on b.
            watcher = await WsRecorder(session, ws_url(nodes.url("b"), "w2")).connect()
            again = await nodes.submit("a", sample_workflow(), client_id="w2")
            await watcher.wait_done(again["prompt_id"], timeout=10)
            seen = events_of(watcher.frames, again["prompt_id"])
            assert seen[0] == "execution_start" and "executed" in seen and "progress_state" in seen
            await watcher.close()
        assert runs(sims) == Counter({a["prompt_id"]: 1 for a in [*answers, followed, again]})
    finally:
        await nodes.stop()
        redis.stop()


async def test_an_upload_to_an_instance_that_died_is_used_by_the_dispatcher(nodes):
    await nodes.start("a", "b")
    sim = await nodes.add_sim("a")
    await nodes.wait_workers_online(("a", "b"), 1)
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (12, 200, 90)).save(picture, format="PNG")
    form = aiohttp.FormData()
    form.add_field("image", picture.getvalue(), filename="mine.png", content_type="image/png")
    status, answer = await nodes.request("b", "POST", "/api/upload/image", data=form)
    assert status == 200 and answer["name"] == "mine.png"
    nodes.kill("b")  # right after answering
    job = await nodes.submit("a", transform_workflow(image="mine.png"))
    assert (await nodes.wait_job("a", job["prompt_id"]))["status"] == "done", nodes.logs()
    placed = [p for p in sim.input_dir.rglob("*.png") if p.read_bytes() == picture.getvalue()]
    assert placed, "the worker got the bytes b was sent"


async def test_mysql_away_refuses_new_jobs_then_the_cluster_recovers(tmp_path):
    redis_url = require_redis()
    with temporary_mysql_database() as mysql:
        proxy = await TcpProxy(mysql["host"], mysql["port"]).start()
        nodes = Nodes(tmp_path, {**mysql, "host": "127.0.0.1", "port": proxy.port}, redis_url)
        try:
            await nodes.start("a", "b")
            sim = await nodes.add_sim("a")
            await nodes.wait_workers_online(("a", "b"), 1)
            before = await nodes.submit("b", sample_workflow())
            assert (await nodes.wait_job("a", before["prompt_id"]))["status"] == "done"

            await proxy.cut()
            refused = {}
            for name in ("a", "b"):
                prompt_id = str(uuid.uuid4())
                status, body = await nodes.request(name, "POST", "/api/prompt",
                                                   json={"prompt": sample_workflow(), "prompt_id": prompt_id})
                assert status == 503 and body["error"]["type"] == "store_unavailable", (name, status, body)
                refused[name] = prompt_id
            await asyncio.sleep(LEASE_SECONDS + 1)  # nobody can renew the lease: nobody dispatches
            assert [(await nodes.get(n, "/healthz"))["role"] for n in ("a", "b")] == ["follower", "follower"]

            await proxy.restore()
            await nodes.dispatcher(timeout=LEASE_SECONDS + 10)
            after = [await nodes.submit(name, sample_workflow()) for name in ("a", "b", "a", "b")]
            for job in after:
                assert (await nodes.wait_job("b", job["prompt_id"], timeout=30))["status"] == "done", nodes.logs()
            for name, prompt_id in refused.items():
                status, _ = await nodes.request(name, "GET", f"/api/task/{prompt_id}/status")
                assert status == 404, "nothing of a refused job was written"
                assert prompt_id not in sim.executed
            assert runs([sim]) == Counter({j["prompt_id"]: 1 for j in [before, *after]})
        finally:
            await nodes.stop()
            await proxy.close()


async def test_a_follower_passes_cancel_priority_and_interrupt_to_the_dispatcher(nodes):
    await nodes.start("a", "b")
    sim = await nodes.add_sim("a", node_seconds=0.5)
    await nodes.wait_workers_online(("a", "b"), 1)
    running = await nodes.submit("b", sample_workflow(size=512))  # about 2 s on the worker
    waiting = [await nodes.submit("b", sample_workflow()) for _ in range(3)]
    for job in waiting:
        assert (await nodes.get("b", f"/api/task/{job['prompt_id']}/status"))["status"] == "queued"
    status, answer = await nodes.request("b", "PATCH", f"/api/task/{waiting[2]['prompt_id']}", json={"priority": 5})
    assert status == 200 and answer["priority"] == 5 and answer["queue_position"] == 1, answer
    status, _ = await nodes.request("b", "POST", "/api/queue", json={"delete": [waiting[0]["prompt_id"]]})
    assert status == 200
    cancelled = await nodes.wait_job("b", waiting[0]["prompt_id"])
    assert cancelled["status"] == "failed" and cancelled["error"]["type"] == "cancelled"
    status, _ = await nodes.request("b", "POST", "/api/interrupt", json={"prompt_id": running["prompt_id"]})
    assert status == 200
    stopped = await nodes.wait_job("b", running["prompt_id"])
    assert stopped["status"] == "failed" and stopped["error"]["type"] == "interrupted", stopped
    for job in (waiting[2], waiting[1]):
        assert (await nodes.wait_job("a", job["prompt_id"]))["status"] == "done"
    assert waiting[0]["prompt_id"] not in sim.executed
    order = [pid for pid in sim.executed if pid in {waiting[1]["prompt_id"], waiting[2]["prompt_id"]}]
    assert order == [waiting[2]["prompt_id"], waiting[1]["prompt_id"]], "the priority set on b took effect"
