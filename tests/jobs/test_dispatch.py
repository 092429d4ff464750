"""Scheduling over real HTTP: makespan, burst spreading, capability routing, priorities, cancel, failover."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from tests.fake_comfy import ksampler_workflow, sample_workflow, slow_workflow
from tests.harness import GatewayProcess, SimProcess

NODE_SECONDS = 0.2
JOB_AT_SPEED_1 = NODE_SECONDS * (64 * 64 / (512 * 512) + 3)  # sample_workflow(size=64)


async def wait_all(cluster, prompt_ids, timeout=60.0) -> list[dict]:
    return [await cluster.wait_job(pid, timeout=timeout) for pid in prompt_ids]


async def test_makespan_close_to_lower_bound_with_mixed_speeds(cluster):
    speeds = [1, 1, 2, 4]
    # Simulators in their own processes, as real workers are: timing then reflects the gateway alone.
    sims = [await SimProcess(speed=s, node_seconds=NODE_SECONDS).start() for s in speeds]
    try:
        ids = []
        for index, sim in enumerate(sims):
            ids.append((await cluster.post("/api/workers", {"url": sim.url, "name": f"speed{speeds[index]}"}))["id"])
        await cluster.wait_online(4)
        started = time.time()
        answers = await asyncio.gather(*(cluster.submit(sample_workflow()) for _ in range(120)))
        statuses = await wait_all(cluster, [a["prompt_id"] for a in answers])
    finally:
        for sim in sims:
            await sim.stop()
    makespan = max(s["finished_at"] for s in statuses) - started
    # The lower bound uses the run times the workers really had (total work / total speed), so a busy
    # machine stretches both sides alike and the ratio measures the gateway's scheduling.
    speed_of = dict(zip(ids, speeds))
    work = sum(s["run_seconds"] * speed_of[s["worker_id"]] for s in statuses)
    lower_bound = max(work, 120 * JOB_AT_SPEED_1) / sum(speeds)
    per_worker = Counter(s["worker_id"] for s in statuses)
    counts = [per_worker[i] for i in ids]
    print(f"makespan {makespan:.2f}s, lower bound {lower_bound:.2f}s, ratio {makespan / lower_bound:.3f}, "
          f"jobs per worker {counts}")
    assert all(s["status"] == "done" for s in statuses)
    assert makespan <= 1.25 * lower_bound
    assert counts[3] > counts[2] > max(counts[0], counts[1])


async def test_burst_spreads_evenly_over_equal_workers(cluster):
    sims = [await cluster.add_sim(node_seconds=0.02) for _ in range(4)]
    for sim in sims:
        await cluster.request("PATCH", f"/api/workers/{sim.worker_id}", json={"max_queue": 20})
    await cluster.wait_online(4)
    answers = await asyncio.gather(*(cluster.submit(sample_workflow()) for _ in range(40)))
    await wait_all(cluster, [a["prompt_id"] for a in answers])
    counts = [len(sim.executed) for sim in sims]
    print("jobs per worker", counts)
    assert sum(counts) == 40
    assert max(counts) - min(counts) <= 2


async def test_capability_routing(cluster):
    special = await cluster.add_sim(extra_nodes=("SpecialUpscaler",))
    checkpointed = await cluster.add_sim(models={"checkpoints": ["only_here.safetensors"]})
    await cluster.add_sim()
    await cluster.wait_online(3)
    special_wf = {"1": {"class_type": "SpecialUpscaler", "inputs": {}}}
    answers = []
    for _ in range(6):
        answers.append(("special", await cluster.submit(special_wf)))
        answers.append(("ckpt", await cluster.submit(ksampler_workflow(steps=2, ckpt="only_here.safetensors"))))
    for kind, answer in answers:
        status = await cluster.wait_job(answer["prompt_id"])
        assert status["status"] == "done", status
    assert {pid for kind, a in answers if kind == "special" for pid in [a["prompt_id"]]} <= set(special.executed)
    assert {a["prompt_id"] for kind, a in answers if kind == "ckpt"} <= set(checkpointed.executed)

    status, body = await cluster.request("POST", "/api/prompt", json={
        "prompt": ksampler_workflow(steps=2, ckpt="nowhere.safetensors")})
    assert status == 400
    assert "nowhere.safetensors" in body["error"]["message"]
    assert set(body["error"]["extra_info"]["workers"]) == {"sim1", "sim2", "sim3"}


async def test_priority_queue_and_gateway_job_id(cluster):
    sim = await cluster.add_sim(node_seconds=0.01)
    await cluster.wait_online()
    await cluster.post("/api/dispatch", {"paused": True})
    low = await cluster.submit(sample_workflow(), priority=1)
    normal = await cluster.submit(sample_workflow())
    high = await cluster.submit(sample_workflow(), priority=10)
    assert "gateway_job_id" in high and "gateway_job_id" not in normal
    gateway_view = await cluster.get(f"/api/task/gateway/{high['gateway_job_id']}")
    assert gateway_view["status"] == "queued" and gateway_view["prompt_id"] == high["prompt_id"]
    queue = await cluster.get("/api/queue")
    assert [item[1] for item in queue["queue_pending"]] == [high["prompt_id"], low["prompt_id"],
                                                            normal["prompt_id"]]
    assert all(len(item) == 5 for item in queue["queue_pending"])
    status = await cluster.get(f"/api/task/{normal['prompt_id']}/status")
    assert status["status"] == "queued" and status["queue_position"] == 3
    await cluster.post("/api/dispatch", {"paused": False})
    for answer in (high, low, normal):
        await cluster.wait_job(answer["prompt_id"])
    assert sim.executed[-3:] == [high["prompt_id"], low["prompt_id"], normal["prompt_id"]]
    done = await cluster.get(f"/api/task/gateway/{high['gateway_job_id']}")
    assert done["status"] == "done" and done["worker"] == "sim1"


async def test_queue_listing_and_positions_follow_every_change_of_the_gateway_queue(cluster):
    # /queue reuses its serialized answer while the gateway queue is unchanged: each change must show.
    await cluster.add_sim(node_seconds=0.01)
    await cluster.wait_online()
    await cluster.post("/api/dispatch", {"paused": True})
    ids = [(await cluster.submit(sample_workflow()))["prompt_id"] for _ in range(4)]

    async def pending():
        return [item[1] for item in (await cluster.get("/queue"))["queue_pending"]]

    assert await pending() == ids
    assert await pending() == ids  # the reused answer
    status, _ = await cluster.request("PATCH", f"/api/task/{ids[2]}", json={"priority": 3})
    assert status == 200
    assert await pending() == [ids[2], ids[0], ids[1], ids[3]]
    assert (await cluster.get(f"/api/task/{ids[1]}/status"))["queue_position"] == 3
    await cluster.post("/api/queue", {"delete": [ids[0]]})
    assert await pending() == [ids[2], ids[1], ids[3]]
    later = (await cluster.submit(sample_workflow()))["prompt_id"]
    assert await pending() == [ids[2], ids[1], ids[3], later]
    assert (await cluster.get(f"/api/task/{later}/status"))["queue_position"] == 4
    await cluster.post("/api/dispatch", {"paused": False})
    for prompt_id in (ids[1], ids[2], ids[3], later):
        await cluster.wait_job(prompt_id)
    assert await pending() == []


async def test_cancel_queued_and_interrupt_running(cluster):
    sim = await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    running = await cluster.submit(slow_workflow(2.0, node_seconds=0.05))
    waiting = await cluster.submit(sample_workflow())
    await cluster.wait_job(running["prompt_id"], states=("running",))
    await cluster.post("/api/queue", {"delete": [waiting["prompt_id"]]})
    cancelled = await cluster.wait_job(waiting["prompt_id"])
    assert cancelled["status"] == "failed" and cancelled["error"]["type"] == "cancelled"
    await cluster.post("/api/interrupt", {"prompt_id": running["prompt_id"]})
    interrupted = await cluster.wait_job(running["prompt_id"])
    assert interrupted["status"] == "failed" and interrupted["error"]["type"] == "interrupted"
    assert waiting["prompt_id"] not in sim.executed


async def test_worker_crash_mid_run_loses_nothing_and_runs_nothing_twice(cluster):
    sims = [await cluster.add_sim(node_seconds=0.05) for _ in range(3)]
    await cluster.wait_online(3)
    answers = [await cluster.submit(slow_workflow(0.4, node_seconds=0.05)) for _ in range(12)]
    victim = sims[0]
    while not victim.running:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await victim.crash()
    # What the victim had started but not finished died with it; only those may run again elsewhere.
    history = victim.executed
    killed_during = {pid for pid in history if pid == history[-1]}
    statuses = await wait_all(cluster, [a["prompt_id"] for a in answers], timeout=60)
    assert all(s["status"] == "done" for s in statuses), statuses
    survivors = Counter(pid for sim in sims[1:] for pid in sim.executed)
    for answer in answers:
        pid = answer["prompt_id"]
        finished_on_victim = pid in victim.executed and pid not in killed_during
        assert survivors[pid] + (1 if finished_on_victim else 0) == 1, pid
    worker = await cluster.get(f"/api/workers/{victim.worker_id}")
    assert worker["state"] == "offline"


async def test_history_survives_worker_restart(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    answer = await cluster.submit(sample_workflow())
    await cluster.wait_job(answer["prompt_id"])
    await sim.crash()
    await sim.restart()
    history = await cluster.get(f"/api/history/{answer['prompt_id']}")
    assert history[answer["prompt_id"]]["status"]["status_str"] == "success"


async def test_draining_worker_gets_no_new_jobs(cluster):
    draining = await cluster.add_sim()
    other = await cluster.add_sim()
    await cluster.wait_online(2)
    await cluster.request("PATCH", f"/api/workers/{draining.worker_id}", json={"draining": True})
    answers = [await cluster.submit(sample_workflow()) for _ in range(6)]
    await wait_all(cluster, [a["prompt_id"] for a in answers])
    assert not draining.executed and len(other.executed) == 6
    worker = await cluster.get(f"/api/workers/{draining.worker_id}")
    assert worker["state"] == "draining"


async def test_kill_9_with_40_queued_jobs_finishes_all_after_restart(tmp_path, fake_comfy_factory):
    data_dir = tmp_path / "gwdata"
    data_dir.mkdir()
    sims = [await fake_comfy_factory(node_seconds=0.02) for _ in range(2)]
    gateway = await GatewayProcess(data_dir).start()
    try:
        async with aiohttp.ClientSession() as session:
            for index, sim in enumerate(sims):
                async with session.post(gateway.url + "/api/workers", json={"url": sim.url}) as response:
                    assert response.status == 201
            await _wait_workers_online(session, gateway.url, 2)
            prompt_ids = []
            for _ in range(40):
                async with session.post(gateway.url + "/api/prompt",
                                        json={"prompt": slow_workflow(0.15, node_seconds=0.02)}) as response:
                    assert response.status == 200
                    prompt_ids.append((await response.json())["prompt_id"])
            await gateway.kill()
            gateway = await GatewayProcess(data_dir, port=gateway.port).start()
            deadline = time.monotonic() + 60
            pending = set(prompt_ids)
            while pending and time.monotonic() < deadline:
                for pid in list(pending):
                    async with session.get(f"{gateway.url}/api/task/{pid}/status") as response:
                        body = await response.json()
                        if body["status"] in ("done", "failed"):
                            assert body["status"] == "done", body
                            pending.discard(pid)
                await asyncio.sleep(0.2)
            assert not pending, f"{len(pending)} jobs never finished"
        runs = Counter(pid for sim in sims for pid in sim.executed)
        assert all(runs[pid] == 1 for pid in prompt_ids), runs
    finally:
        await gateway.terminate()


async def _wait_workers_online(session, url: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        async with session.get(url + "/api/workers") as response:
            workers = await response.json()
        if sum(w["state"] == "online" and w["node_types"] for w in workers) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"workers not online: {workers}")


async def test_a_restarted_gateway_lists_and_runs_waiting_jobs_exactly_as_before(tmp_path, fake_comfy_factory):
    # Waiting jobs come back with their workflows unread (parsed when first needed): /queue, positions
    # and the runs must not show it.
    data_dir = tmp_path / "gwdata"
    data_dir.mkdir()
    sim = await fake_comfy_factory(node_seconds=0.01)
    gateway = await GatewayProcess(data_dir).start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(gateway.url + "/api/workers", json={"url": sim.url}) as response:
                assert response.status == 201
            await _wait_workers_online(session, gateway.url, 1)
            async with session.post(gateway.url + "/api/dispatch", json={"paused": True}) as response:
                assert response.status == 200
            ids = []
            for priority in (0, 2, 0, 1):
                async with session.post(gateway.url + "/api/prompt", json={
                        "prompt": sample_workflow(), "priority": priority, "extra_data": {"note": "ü"}}) as response:
                    ids.append((await response.json())["prompt_id"])
            async with session.get(gateway.url + "/queue") as response:
                before = (await response.json())["queue_pending"]
            await gateway.terminate()
            gateway = await GatewayProcess(data_dir, port=gateway.port).start()
            async with session.get(gateway.url + "/queue") as response:
                after = (await response.json())["queue_pending"]
            assert after == before and [item[1] for item in after] == [ids[1], ids[3], ids[0], ids[2]]
            assert after[0][4] and after[0][3]["note"] == "ü"  # outputs_to_execute and extra_data
            async with session.get(f"{gateway.url}/api/task/{ids[2]}/status") as response:
                assert (await response.json())["queue_position"] == 4
            async with session.post(gateway.url + "/api/dispatch", json={"paused": False}) as response:
                assert response.status == 200
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(sim.executed) < 4:
                await asyncio.sleep(0.05)
        assert sim.executed == [ids[1], ids[3], ids[0], ids[2]]
    finally:
        await gateway.terminate()
