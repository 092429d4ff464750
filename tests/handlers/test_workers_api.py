"""/api/workers: validation, conflicts, passwords never shown, health, auth fallback, errors."""

from __future__ import annotations

import asyncio
import logging

from tests.fake_comfy import sample_workflow


async def test_register_validate_and_change_workers(cluster, fake_comfy_factory):
    sim = await fake_comfy_factory()
    for body, field in (({"url": "ftp://x:1"}, "url"), ({"url": "http://"}, "url"), ({"url": "http://h:99999"}, "url"),
                        ({}, "url"), ({"url": sim.url, "weight": 0}, "weight"),
                        ({"url": sim.url, "max_queue": "3"}, "max_queue"), ({"url": sim.url, "colour": 1}, "colour"),
                        ({"url": sim.url, "enabled": "yes"}, "enabled")):
        status, answer = await cluster.request("POST", "/api/workers", json=body)
        assert status == 400, body
        assert answer["error"]["field"] == field and field in answer["error"]["message"]
    status, answer = await cluster.request("POST", "/api/workers", data=b"not json",
                                           headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["type"] == "bad_request"

    created = await cluster.post("/api/workers", {"url": sim.url + "/", "name": "gpu-a", "weight": 2})
    assert created["url"] == sim.url and created["weight"] == 2.0 and created["max_queue"] == 1
    status, answer = await cluster.request("POST", "/api/workers", json={"url": sim.url})
    assert status == 409 and "already registered" in answer["error"]["message"]

    await cluster.wait_online()
    listed = await cluster.get("/api/workers")
    worker = listed[0]
    assert worker["state"] == "online" and worker["vram_total"] and worker["latency_ms"] is not None
    assert worker["devices"] and worker["node_types"] > 10 and worker["queue_remaining"] == 0

    status, answer = await cluster.request("PATCH", f"/api/workers/{created['id']}", json={"enabled": False})
    assert status == 200 and answer["state"] == "disabled"
    status, answer = await cluster.request("PATCH", f"/api/workers/{created['id']}", json={"max_queue": 0})
    assert status == 400 and answer["error"]["field"] == "max_queue"
    status, answer = await cluster.request("GET", "/api/workers/999")
    assert status == 404 and answer["error"]["type"] == "not_found"
    status, answer = await cluster.request("DELETE", f"/api/workers/{created['id']}")
    assert status == 200 and await cluster.get("/api/workers") == []


async def test_credentials_are_used_but_never_shown_or_logged(cluster, fake_comfy_factory, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "p@ss-w0rd-do-not-leak"
    sim = await fake_comfy_factory(auth=("studio", secret))
    status, answer = await cluster.request("POST", "/api/workers", json={"url": f"http://studio:{secret}@"
                                                                         f"127.0.0.1:{sim.port}"})
    assert status == 201
    assert answer["auth_username"] == "studio" and answer["auth_password_set"] is True
    assert secret not in str(answer) and "@" not in answer["url"]
    await cluster.wait_online()
    probe = await cluster.post(f"/api/workers/{answer['id']}/test")
    assert probe["ok"] is True and probe["system"]["comfyui_version"]
    job = await cluster.submit(sample_workflow())
    assert (await cluster.wait_job(job["prompt_id"]))["status"] == "done"
    assert secret not in caplog.text


async def test_global_auth_applies_to_workers_without_their_own(tmp_path, fake_comfy_factory):
    from tests.harness import Cluster
    cluster = Cluster(tmp_path / "gw", WORKER_AUTH_USERNAME="team", WORKER_AUTH_PASSWORD="shared-pw")
    await cluster.start()
    try:
        protected = await fake_comfy_factory(auth=("team", "shared-pw"))
        await cluster.post("/api/workers", {"url": protected.url})
        await cluster.wait_online()
        wrong = await fake_comfy_factory(auth=("other", "pw"))
        created = await cluster.post("/api/workers", {"url": wrong.url})
        await asyncio.sleep(0.8)
        worker = await cluster.get(f"/api/workers/{created['id']}")
        assert worker["state"] == "offline" and "401" in worker["last_error"]
        probe = await cluster.post("/api/workers/test", {"url": wrong.url, "auth_username": "other",
                                                         "auth_password": "pw"})
        assert probe["ok"] is True
    finally:
        await cluster.stop()


async def test_worker_going_offline_and_coming_back(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    await sim.crash()
    for _ in range(50):
        worker = (await cluster.get("/api/workers"))[0]
        if worker["state"] == "offline":
            break
        await asyncio.sleep(0.1)
    assert worker["state"] == "offline" and worker["last_error"]
    # The queue does not depend on a live worker: accepted now, checked against the last known node list
    # (an unknown node type is still refused), run when the worker is back.
    waiting = await cluster.submit(sample_workflow())
    status, answer = await cluster.request("POST", "/api/prompt", json={"prompt": {
        "1": {"class_type": "NoSuchNode", "inputs": {}}}})
    assert status == 400 and "NoSuchNode" in str(answer)
    assert (await cluster.get(f"/api/task/{waiting['prompt_id']}/status"))["status"] == "queued"
    await sim.restart()
    await cluster.wait_online()
    job = await cluster.submit(sample_workflow())
    assert (await cluster.wait_job(job["prompt_id"]))["status"] == "done"
    assert (await cluster.wait_job(waiting["prompt_id"]))["status"] == "done"
