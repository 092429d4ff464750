"""An unmodified ComfyUI-style client (bare paths only) works through the gateway against two workers."""

from __future__ import annotations

import asyncio
import io
import json
import time

import aiohttp
from PIL import Image

from tests.fake_comfy import sample_workflow, transform_workflow

PASSWORD = "s3cret-worker-pass"


def png_bytes(color: tuple, size: tuple = (8, 6)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


async def upload(cluster, data: bytes, name: str, **fields) -> dict:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("image", data, filename=name, content_type="image/png")
    status, body = await cluster.request("POST", "/upload/image", data=form)
    assert status == 200, body
    return body


async def poll_history(cluster, prompt_id: str, timeout: float = 15.0) -> dict:
    """What a polling client does: GET /history/{id} until it is not {} (also polls /prompt and /queue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await cluster.get("/prompt")
        assert "queue_remaining" in info["exec_info"]
        queue = await cluster.get("/queue")
        assert set(queue) == {"queue_running", "queue_pending"}
        history = await cluster.get(f"/history/{prompt_id}")
        if history:
            return history[prompt_id]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no history for {prompt_id}")


async def test_bare_path_client_against_two_workers(cluster):
    plain = await cluster.add_sim(node_seconds=0.02)
    secured = await cluster.add_sim(node_seconds=0.02, auth=("studio", PASSWORD),
                                    worker={"auth_username": "studio", "auth_password": PASSWORD})
    await cluster.wait_online(2)

    # Uploads with subfolder, type and overwrite keep ComfyUI's answers and rename rules.
    first = await upload(cluster, png_bytes((255, 0, 0)), "client.png", subfolder="flow", type="input")
    assert first == {"name": "client.png", "subfolder": "flow", "type": "input"}
    again = await upload(cluster, png_bytes((255, 0, 0)), "client.png", subfolder="flow")
    assert again["name"] == "client.png"
    renamed = await upload(cluster, png_bytes((0, 255, 0)), "client.png", subfolder="flow")
    assert renamed["name"] == "client (1).png"
    replaced = await upload(cluster, png_bytes((0, 0, 255)), "client.png", subfolder="flow", overwrite="true")
    assert replaced["name"] == "client.png"

    # Prompts with and without client_id, enough to keep both workers busy.
    prompt_ids = []
    for index in range(6):
        workflow = transform_workflow("flow/client.png") if index == 0 else sample_workflow()
        body = {"prompt": workflow}
        if index % 2 == 0:
            body["client_id"] = f"client-{index}"
        status, answer = await cluster.request("POST", "/prompt", json=body)
        assert status == 200, answer
        assert set(answer) >= {"prompt_id", "number", "node_errors"}
        prompt_ids.append(answer["prompt_id"])

    entries = [await poll_history(cluster, pid) for pid in prompt_ids]
    assert all(entry["status"]["status_str"] == "success" for entry in entries)
    # The client's own client_id comes back in the history's prompt tuple, not the gateway's.
    assert entries[0]["prompt"][3].get("client_id") == "client-0"
    assert "client_id" not in entries[1]["prompt"][3]

    # Both workers got work.
    assert plain.executed and secured.executed

    # History urls download the right bytes; /view without prompt_id finds the worker by itself.
    for pid, entry in zip(prompt_ids, entries):
        for output in entry["outputs"].values():
            for item in output.get("images", []):
                sim = plain if pid in plain.executed else secured
                base = sim.temp_dir if item["type"] == "temp" else sim.output_dir
                expected = (base / item["subfolder"] / item["filename"]).read_bytes()
                async with cluster.session.get(item["url"]) as response:
                    assert response.status == 200
                    assert await response.read() == expected
                query = {"filename": item["filename"], "subfolder": item["subfolder"], "type": item["type"]}
                async with cluster.session.get(cluster.url + "/view", params=query) as response:
                    assert response.status == 200
                    assert await response.read() == expected
                async with cluster.session.get(cluster.url + "/view", params=query,
                                               headers={"Range": "bytes=0-9"}) as response:
                    assert response.status == 206
                    assert response.headers["Content-Range"] == f"bytes 0-9/{len(expected)}"
                    assert await response.read() == expected[:10]

    # Uploaded inputs can be viewed back too (served by the gateway itself).
    async with cluster.session.get(cluster.url + "/view", params={"filename": "client (1).png",
                                                                   "subfolder": "flow", "type": "input"}) as r:
        assert r.status == 200
        assert await r.read() == png_bytes((0, 255, 0))

    # The password is never in any answer.
    for path in ("/api/workers", f"/api/workers/{secured.worker_id}", "/api/settings", "/queue", "/history",
                 "/system_stats", "/api/tasks", "/metrics", "/api/openapi.json"):
        async with cluster.session.get(cluster.url + path) as response:
            text = await response.text()
            assert PASSWORD not in text, path
    worker = await cluster.get(f"/api/workers/{secured.worker_id}")
    assert worker["auth_password_set"] is True and "auth_password" not in worker


async def test_view_errors_keep_comfyui_statuses(cluster):
    await cluster.add_sim()
    await cluster.wait_online()
    for query, expected in (({"filename": "../x.png"}, 400), ({"filename": "a.png", "type": "bogus"}, 400),
                            ({"filename": "a.png", "subfolder": "../../etc"}, 403),
                            ({"filename": "nope.png"}, 404), ({}, 404)):
        async with cluster.session.get(cluster.url + "/view", params=query) as response:
            assert response.status == expected, query


async def test_invalid_prompt_keeps_comfyui_400_shape(cluster):
    await cluster.add_sim()
    await cluster.wait_online()
    status, body = await cluster.request("POST", "/prompt", json={"client_id": "x"})
    assert status == 400 and body["error"]["type"] == "no_prompt" and body["node_errors"] == {}
    workflow = sample_workflow()
    del workflow["1"]["inputs"]["width"]
    status, body = await cluster.request("POST", "/prompt", json={"prompt": workflow})
    assert status == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["1"]["errors"][0]["type"] == "required_input_missing"
    status, body = await cluster.request("POST", "/prompt", data=b"{not json")
    assert status == 400, "a client's malformed JSON is a 4xx, never a 5xx"
    status, body = await cluster.request("POST", "/prompt", json={"prompt": sample_workflow(),
                                                                  "prompt_id": "not-a-uuid"})
    assert status == 400 and body["error"]["type"] == "invalid_prompt_id"


async def test_client_chosen_prompt_id_and_duplicate(cluster):
    await cluster.add_sim()
    await cluster.wait_online()
    chosen = "0b0f2c3e-7c2a-4b8e-9d2f-2c1e6f4a9b10"
    answer = await cluster.submit(sample_workflow(), prompt_id=chosen)
    assert answer["prompt_id"] == chosen
    status, body = await cluster.request("POST", "/prompt", json={"prompt": sample_workflow(), "prompt_id": chosen})
    assert status == 409 and json.dumps(body)
    assert (await cluster.wait_job(chosen))["status"] == "done"
