"""Regressions found in review: bad input stays 4xx, retries fall back to the only capable worker,
interrupted sends are settled after a restart, concurrent uploads never share a name."""

from __future__ import annotations

import asyncio
import io
import os

import aiohttp
from PIL import Image

from gateway.store.store import Store
from tests.fake_comfy import sample_workflow, slow_workflow


def png(color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(out, format="PNG")
    return out.getvalue()


async def upload(cluster, data: bytes, name: str) -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=name, content_type="image/png")
    return await cluster.request("POST", "/upload/image", data=form)


async def test_malformed_client_input_is_a_4xx(cluster):
    await cluster.add_sim()
    await cluster.wait_online()
    for prompt in ({"1": {"class_type": "SaveImage", "inputs": ["x"]}}, {"1": {"class_type": ["x"], "inputs": {}}}):
        status, body = await cluster.request("POST", "/prompt", json={"prompt": prompt})
        assert status == 400 and body["error"]["type"] == "invalid_prompt", body
    status, body = await cluster.request("POST", "/interrupt", json={"prompt_id": [1]})
    assert status == 400 and body["error"]["field"] == "prompt_id"
    status, body = await cluster.request("POST", "/queue", json={"delete": 5})
    assert status == 400 and body["error"]["field"] == "delete"
    form = aiohttp.FormData()
    form.add_field("image", png((1, 2, 3)), filename="m.png", content_type="image/png")
    form.add_field("original_ref", '{"filename": ["x"]}')
    status, body = await cluster.request("POST", "/upload/mask", data=form)
    assert status == 400 and body["error"]["field"] == "original_ref"


async def test_range_on_gateway_held_uploads(cluster):
    await cluster.add_sim()
    await cluster.wait_online()
    data = os.urandom(1000)
    status, answer = await upload(cluster, data, "blob.png")
    assert status == 200
    query = {"filename": "blob.png", "type": "input"}
    for header, status, body in (("bytes=-100", 206, data[-100:]), ("bytes=10-19", 206, data[10:20]),
                                 ("bytes=990-5000", 206, data[990:]), ("bytes=5-2", 416, b""),
                                 ("bytes=-0", 416, b""), ("bytes=2000-", 416, b"")):
        async with cluster.session.get(cluster.url + "/view", params=query, headers={"Range": header}) as r:
            assert r.status == status, header
            if status == 206:
                assert await r.read() == body


async def test_concurrent_uploads_of_different_bytes_get_different_names(cluster):
    results = await asyncio.gather(*(upload(cluster, png((i, 0, 0)), "image.png") for i in range(6)))
    names = [body["name"] for status, body in results]
    assert all(status == 200 for status, _ in results)
    assert len(set(names)) == 6, names


async def test_retry_falls_back_to_the_only_capable_worker(cluster):
    sim = await cluster.add_sim(node_seconds=0.05, extra_nodes=("OnlyHere",))
    await cluster.wait_online()
    workflow = slow_workflow(1.0, node_seconds=0.05)
    last = str(max(int(k) for k in workflow))
    workflow[str(int(last) + 1)] = {"class_type": "OnlyHere", "inputs": {"image": [last, 0]}}
    answer = await cluster.submit(workflow)
    await cluster.wait_job(answer["prompt_id"], states=("running",))
    await sim.crash()
    await asyncio.sleep(0.8)
    await sim.restart()
    final = await cluster.wait_job(answer["prompt_id"], timeout=30)
    assert final["status"] == "done" and final["attempts"] == 1


async def test_a_send_cut_short_by_a_restart_is_settled(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    await cluster.post("/api/dispatch", {"paused": True})
    answer = await cluster.submit(sample_workflow())
    data_dir = cluster.gateway.settings.data_path
    await cluster.gateway.stop()
    # As if the gateway died after writing "submitted to this worker" but before the POST went out.
    store = Store("sqlite", sqlite_path=str(data_dir / "gateway.sqlite3"))
    await store.open()
    await store.update_job(answer["prompt_id"], {"state": "submitted", "worker_id": sim.worker_id,
                                                 "submitted_at": None})
    await store.close()
    await cluster.restart_gateway_after_stop()
    assert (await cluster.get("/api/dispatch"))["paused"] is True, "the pause is kept across restarts"
    await cluster.post("/api/dispatch", {"paused": False})
    final = await cluster.wait_job(answer["prompt_id"], timeout=20)
    assert final["status"] == "done"
    assert sim.executed.count(answer["prompt_id"]) == 1
