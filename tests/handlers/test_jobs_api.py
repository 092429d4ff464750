"""/api/jobs (newer ComfyUI, read by the newest editor) for the whole cluster: running, waiting and
finished jobs with newer ComfyUI's shapes, filters and errors; cancel routes."""

from __future__ import annotations

import asyncio
import uuid

from tests.fake_comfy import sample_workflow, slow_workflow


async def test_jobs_list_detail_and_cancel(cluster):
    await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    done = await cluster.submit(sample_workflow(), client_id="editor-1",
                                extra_data={"extra_pnginfo": {"workflow": {"id": "wf-1"}}})
    await cluster.wait_job(done["prompt_id"])
    slow = await cluster.submit(slow_workflow(3.0, node_seconds=0.05))
    waiting = await cluster.submit(sample_workflow())
    await cluster.wait_job(slow["prompt_id"], states=("running",))

    both = await cluster.get("/api/jobs")
    assert both["pagination"] == {"offset": 0, "limit": None, "total": 3, "has_more": False}
    by_id = {job["id"]: job for job in both["jobs"]}
    assert by_id[slow["prompt_id"]]["status"] == "in_progress"
    assert by_id[waiting["prompt_id"]]["status"] == "pending"
    finished = by_id[done["prompt_id"]]
    assert finished["status"] == "completed" and finished["workflow_id"] == "wf-1"
    assert finished["outputs_count"] == 1
    assert finished["preview_output"]["nodeId"] == "4" and finished["preview_output"]["mediaType"] == "images"
    assert finished["execution_end_time"] >= finished["execution_start_time"] > 0
    assert [j["create_time"] for j in both["jobs"]] == sorted((j["create_time"] for j in both["jobs"]),
                                                              reverse=True)

    history = await cluster.get("/api/jobs?status=completed,failed,cancelled&limit=64&offset=0")
    assert [j["id"] for j in history["jobs"]] == [done["prompt_id"]]
    queue = await cluster.get("/comfy/api/jobs?status=in_progress,pending&limit=200&offset=0")
    assert {j["id"] for j in queue["jobs"]} == {slow["prompt_id"], waiting["prompt_id"]}
    page = await cluster.get("/api/jobs?limit=1&offset=1&sort_order=asc")
    assert page["pagination"] == {"offset": 1, "limit": 1, "total": 3, "has_more": True}
    assert (await cluster.get("/api/jobs?workflow_id=wf-1"))["pagination"]["total"] == 1

    detail = await cluster.get(f"/comfy/api/jobs/{done['prompt_id']}")
    assert detail["outputs"]["4"]["images"][0]["filename"].startswith("generated_")
    assert detail["execution_status"]["status_str"] == "success"
    assert detail["workflow"]["prompt"]["1"]["class_type"] == "EmptyImage"
    assert detail["workflow"]["extra_data"]["client_id"] == "editor-1"
    assert (await cluster.get(f"/api/jobs/{waiting['prompt_id']}"))["status"] == "pending"
    status, body = await cluster.request("GET", f"/api/jobs/{uuid.uuid4()}")
    assert (status, body) == (404, {"error": "Job not found"})

    for bad in ("status=done", "sort_by=name", "sort_order=up", "limit=0", "offset=-1", "limit=x"):
        status, body = await cluster.request("GET", "/api/jobs?" + bad)
        assert status == 400 and isinstance(body["error"], str), bad

    assert await cluster.post(f"/api/jobs/{waiting['prompt_id']}/cancel") == {"cancelled": True}
    assert await cluster.post(f"/api/jobs/{done['prompt_id']}/cancel") == {"cancelled": False}
    status, body = await cluster.request("POST", "/api/jobs/cancel", json={"job_ids": ["nope", slow["prompt_id"]]})
    assert status == 400 and body == {"error": "job_ids contains invalid id(s)", "invalid_ids": ["nope"]}
    assert await cluster.post("/comfy/api/jobs/cancel", {"job_ids": [slow["prompt_id"]]}) == {"cancelled": True}
    await cluster.wait_job(slow["prompt_id"], states=("failed",))
    await cluster.wait_job(waiting["prompt_id"], states=("failed",))
    for _ in range(50):
        ended = await cluster.get("/api/jobs?status=cancelled")
        if ended["pagination"]["total"] == 2:
            break
        await asyncio.sleep(0.1)
    assert {j["id"] for j in ended["jobs"]} == {slow["prompt_id"], waiting["prompt_id"]}
    assert (await cluster.get("/api/jobs?status=failed"))["jobs"] == []
