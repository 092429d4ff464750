"""/api/jobs of newer ComfyUI (comfyui-api.md §9) for the whole cluster: what the newest editor's queue
and history panels read.

Running and waiting jobs come from the cluster's queue (the gateway's jobs, plus jobs the workers got
from elsewhere); finished ones from the gateway's job records, so they outlive any worker. A job the
user cancelled or interrupted reads "cancelled"; a failed run "failed".
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..errors import ComfyError

STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
SORTS = ("created_at", "execution_duration")
PREVIEWABLE = ("images", "video", "audio")
THREE_D = (".obj", ".fbx", ".gltf", ".glb")
WINDOW = 1000  # finished jobs read for a sort other than newest first


def _bad(message: str, **extra: Any) -> ComfyError:
    return ComfyError(400, {"error": message, **extra})


def parse_query(query: dict) -> dict:
    """Validated list parameters; ComfyError 400 {"error"} naming the bad one."""
    raw_status = query.get("status")
    statuses = [s.strip() for s in raw_status.split(",") if s.strip()] if raw_status else list(STATUSES)
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise _bad(f"Invalid status value(s): {', '.join(unknown)}. Valid values: {', '.join(STATUSES)}")
    sort_by = query.get("sort_by") or "created_at"
    if sort_by not in SORTS:
        raise _bad("sort_by must be 'created_at' or 'execution_duration'")
    order = query.get("sort_order") or "desc"
    if order not in ("asc", "desc"):
        raise _bad("sort_order must be 'asc' or 'desc'")
    limit = _integer(query, "limit", None, 1)
    offset = _integer(query, "offset", 0, 0)
    return {"statuses": statuses, "workflow_id": query.get("workflow_id") or None, "sort_by": sort_by,
            "order": order, "limit": limit, "offset": offset}


def _integer(query: dict, name: str, default: int | None, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be an integer") from None
    if value < minimum:
        raise _bad(f"{name} must be {'a positive integer' if minimum else 'non-negative'}")
    return value


def _workflow_id(extra_data: dict) -> str | None:
    workflow = ((extra_data or {}).get("extra_pnginfo") or {}).get("workflow") or {}
    return workflow.get("id") if isinstance(workflow, dict) else None


def _prune(job: dict) -> dict:
    return {k: v for k, v in job.items() if v is not None}


def outputs_summary(outputs: dict) -> tuple[int, dict | None]:
    """How many output items, and the one to preview (a saved one first)."""
    count, preview, fallback = 0, None, None
    for node_id, node_outputs in (outputs or {}).items():
        if not isinstance(node_outputs, dict):
            continue
        for media, items in node_outputs.items():
            if media == "animated" or not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict):
                    continue
                count += 1
                fmt = str(item.get("format") or "")
                if media in PREVIEWABLE or fmt.startswith(("video/", "audio/")) \
                        or str(item.get("filename", "")).lower().endswith(THREE_D):
                    enriched = {**item, "nodeId": node_id, "mediaType": media}
                    if preview is None and item.get("type") == "output":
                        preview = enriched
                    elif fallback is None:
                        fallback = enriched
    return count, preview or fallback


def queue_job(item: list, status: str, created_at: float | None) -> dict:
    """A queue item ([number, id, prompt, extra_data, outputs]) as a job."""
    extra = item[3] if isinstance(item[3], dict) else {}
    create = extra.get("create_time") or int((created_at or time.time()) * 1000)
    return _prune({"id": item[1], "status": status, "priority": item[0], "create_time": create,
                   "outputs_count": 0, "workflow_id": _workflow_id(extra)})


def finished_job(row: dict, details: bool = False) -> dict:
    """A finished job record (done or failed) as a job."""
    history = row.get("history") or {}
    status_info = history.get("status") or {}
    started = ended = error = None
    interrupted = False
    for entry in status_info.get("messages") or []:
        if isinstance(entry, (list, tuple)) and len(entry) >= 2 and isinstance(entry[1], dict):
            name, data = entry[0], entry[1]
            if name == "execution_start":
                started = data.get("timestamp")
            elif name in ("execution_success", "execution_error", "execution_interrupted"):
                ended = data.get("timestamp")
                error = data if name == "execution_error" else error
                interrupted = interrupted or name == "execution_interrupted"
    failure = (row.get("error") or {}).get("type")
    if row["state"] == "done":
        status = "completed"
    elif interrupted or failure in ("cancelled", "interrupted"):
        status = "cancelled"
    else:
        status = "failed"
    body = row.get("body") or {}
    extra = dict(body.get("extra_data") or {})
    if row.get("client_id"):
        extra["client_id"] = row["client_id"]
    outputs = history.get("outputs") or {}
    count, preview = outputs_summary(outputs)
    number = row.get("number") if row.get("number") is not None else row.get("seq")
    job = _prune({
        "id": row["prompt_id"], "status": status,
        "priority": int(number) if isinstance(number, float) and number.is_integer() else number,
        "create_time": int(row["created_at"] * 1000),
        "execution_start_time": started or (int(row["started_at"] * 1000) if row.get("started_at") else None),
        "execution_end_time": ended or (int(row["finished_at"] * 1000) if row.get("finished_at") else None),
        "execution_error": error, "outputs_count": count, "preview_output": preview,
        "workflow_id": _workflow_id(extra)})
    if details:
        job["outputs"] = outputs
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": body.get("prompt") or {}, "extra_data": extra}
    return job


def _duration(job: dict) -> float:
    start, end = job.get("execution_start_time"), job.get("execution_end_time")
    return end - start if start and end else 0


class JobsView:
    """Answers /api/jobs, /api/jobs/{id} and the cancel routes from the gateway's state."""

    def __init__(self, gateway):
        self.gw = gateway

    async def _active(self, statuses: list) -> list:
        queue = await self.gw.comfy_api.queue()
        out = []
        for key, status in (("queue_running", "in_progress"), ("queue_pending", "pending")):
            if status not in statuses:
                continue
            for item in queue[key]:
                job = self.gw.jobs.get(item[1])
                out.append(queue_job(item, status, job.created_at if job is not None else None))
        return out

    async def list(self, query: dict) -> dict:
        """GET /api/jobs."""
        q = parse_query(query)
        active = await self._active(q["statuses"])
        finished, finished_total = await self._finished(q)
        if q["workflow_id"]:
            active = [j for j in active if j.get("workflow_id") == q["workflow_id"]]
            finished = [j for j in finished if j.get("workflow_id") == q["workflow_id"]]
            finished_total = len(finished)
        jobs = active + finished
        key = _duration if q["sort_by"] == "execution_duration" else (lambda j: j.get("create_time", 0))
        jobs.sort(key=key, reverse=q["order"] == "desc")
        total = len(active) + finished_total
        page = jobs[q["offset"]:]
        if q["limit"]:
            page = page[:q["limit"]]
        return {"jobs": page, "pagination": {"offset": q["offset"], "limit": q["limit"], "total": total,
                                             "has_more": q["offset"] + len(page) < total}}

    async def _finished(self, q: dict) -> tuple[list, int]:
        """Finished jobs newest first (enough of them for the page asked), and how many there are."""
        states = (["done"] if "completed" in q["statuses"] else []) + (
            ["failed"] if {"failed", "cancelled"} & set(q["statuses"]) else [])
        if not states:
            return [], 0
        newest_first = q["sort_by"] == "created_at" and q["order"] == "desc"
        window = q["offset"] + q["limit"] if q["limit"] and newest_first else WINDOW
        listing = await self.gw.store.list_jobs(state=states, limit=window, include_payload=True)
        finished = [finished_job(row) for row in listing["items"]]
        kept = [j for j in finished if j["status"] in q["statuses"]]
        return kept, listing["total"] - (len(finished) - len(kept))

    async def one(self, prompt_id: str) -> dict:
        """GET /api/jobs/{id}: the job with its outputs and workflow; ComfyError 404 when unknown."""
        job = self.gw.jobs.get(prompt_id)
        if job is not None and job.active:
            status = "in_progress" if job.state == "running" else "pending"
            self.gw.jobs.derive(job)  # a job reloaded at start-up may not have been read yet
            return queue_job(job.queue_item(), status, job.created_at)
        row = await self.gw.store.get_job(prompt_id)
        if row is not None and row["state"] in ("done", "failed"):
            return finished_job(row, details=True)
        for item_status, items in (await self._foreign()).items():
            for item in items:
                if item[1] == prompt_id:
                    return queue_job(item, item_status, None)
        raise ComfyError(404, {"error": "Job not found"})

    async def _foreign(self) -> dict:
        queue = await self.gw.comfy_api.queue()
        return {"in_progress": queue["queue_running"], "pending": queue["queue_pending"]}

    async def cancel(self, prompt_id: str) -> dict:
        """POST /api/jobs/{id}/cancel: a running job is interrupted, a waiting one dropped."""
        job = self.gw.jobs.get(prompt_id)
        if job is None or not job.active:
            return {"cancelled": False}
        await self.gw.comfy_api.interrupt({"prompt_id": prompt_id})
        return {"cancelled": True}

    async def cancel_many(self, body: Any) -> dict:
        """POST /api/jobs/cancel {"job_ids": [...]}."""
        ids = body.get("job_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise _bad("job_ids must be a list")
        invalid = [i for i in ids if not _is_uuid(i)]
        if invalid:
            raise _bad("job_ids contains invalid id(s)", invalid_ids=invalid)
        results = [await self.cancel(i) for i in ids]
        return {"cancelled": any(r["cancelled"] for r in results)}


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
