"""The cluster seen as one ComfyUI: merged queue, history, cancel/interrupt and info routes."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from typing import Any

from .errors import NO_WORKER_ONLINE, BadRequest, GatewayError, WorkerUnavailable
from .files.outputs import with_urls
from .jobs.model import QUEUED, RUNNING, SUBMITTED
from .jobs.tracker import queue_items

logger = logging.getLogger(__name__)

HISTORY_WAIT_SECONDS = 10.0
HISTORY_LIMIT = 10_000
UPLOAD_COMBO_NODES = ("LoadImage", "LoadImageMask")


class ComfyApi:
    """Answers ComfyUI's routes for the whole cluster; handlers stay thin."""

    def __init__(self, gateway):
        self.gw = gateway
        self._waiting_json: tuple | None = None  # (queue version, the waiting jobs' /queue items as JSON)

    def _online(self) -> list:
        return [w for w in self.gw.registry.all() if w.status == "online"]

    def _any_online(self):
        online = self._online()
        if not online:
            raise WorkerUnavailable(NO_WORKER_ONLINE)
        return online

    # ----- queue -----------------------------------------------------------------------------------
    async def queue(self) -> dict:
        """GET /queue as data (see :meth:`queue_body`)."""
        return json.loads(await self.queue_body())

    async def queue_body(self) -> str:
        """GET /queue as JSON text: gateway jobs (running, on workers, waiting in the gateway) plus the
        workers' other jobs.

        The gateway's own waiting jobs are most of a deep queue and change only when a job enters or
        leaves it: their part of the answer is joined once per queue version, from texts each job keeps.
        """
        jobs = self.gw.jobs
        running = [j.queue_item() for j in jobs.active.values() if j.state == RUNNING]
        on_workers = sorted((j for j in jobs.active.values() if j.state == SUBMITTED), key=lambda j: j.number)
        pending = [j.queue_item() for j in on_workers]
        extra: list = []
        for worker in self._online():
            snapshot = await self._worker_queue(worker)
            for key, target in (("queue_running", running), ("queue_pending", extra)):
                for item in queue_items(snapshot, key):
                    if jobs.get(item[1]) is None:
                        target.append(item[:5])
        version = jobs.queue_version
        if self._waiting_json is None or self._waiting_json[0] != version:
            self._waiting_json = (version, ", ".join(jobs.queue_item_json(job) for job in jobs.waiting_in_order()))
        parts = [json.dumps(pending)[1:-1], self._waiting_json[1], json.dumps(extra)[1:-1]]
        return '{"queue_running": %s, "queue_pending": [%s]}' % (json.dumps(running), ", ".join(p for p in parts if p))

    async def _worker_queue(self, worker) -> dict:
        ttl = self.gw.settings.queue_cache_ttl_seconds
        snapshot = getattr(worker, "queue_snapshot", None)
        if snapshot and time.time() - snapshot[0] <= ttl:
            return snapshot[1]
        try:
            queue = await worker.client.get_json("/queue")
        except GatewayError:
            return snapshot[1] if snapshot else {}
        worker.queue_snapshot = (time.time(), queue if isinstance(queue, dict) else {})
        return worker.queue_snapshot[1]

    def prompt_info(self) -> dict:
        """GET /prompt: the cluster's queue_remaining."""
        return {"exec_info": {"queue_remaining": self.gw.cluster_queue_remaining()}}

    async def delete_from_queue(self, body: Any) -> None:
        """POST /queue: delete listed jobs (gateway or worker queue) and/or clear every pending job."""
        body = body if isinstance(body, dict) else {}
        delete = _id_list(body, "delete")
        jobs, dispatcher = self.gw.jobs, self.gw.dispatcher
        targets: list = []
        if body.get("clear"):
            targets = [j for j in jobs.active.values() if j.state in (QUEUED, SUBMITTED)]
        for prompt_id in delete:
            job = jobs.active.get(prompt_id) if isinstance(prompt_id, str) else None
            if job is not None and job.state in (QUEUED, SUBMITTED) and job not in targets:
                targets.append(job)
        by_worker: dict[int, list] = {}
        for job in targets:
            if job.state == SUBMITTED and job.worker_id is not None:
                by_worker.setdefault(job.worker_id, []).append(job.prompt_id)
            job.cancel_requested = "cancelled"
            dispatcher.cancel_waiting(job)
        foreign = {"clear": True} if body.get("clear") else {}
        others = [p for p in delete if isinstance(p, str) and jobs.get(p) is None]
        if others:
            foreign["delete"] = others
        await asyncio.gather(*(self._post_to(w, "/queue", {"delete": ids}) for wid, ids in by_worker.items()
                               if (w := self.gw.registry.get(wid))),
                             *(self._post_to(w, "/queue", foreign) for w in self._online() if foreign))

    async def interrupt(self, body: Any) -> None:
        """POST /interrupt: stop the named running job (a waiting one is cancelled), or every running job."""
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        if prompt_id is not None and not isinstance(prompt_id, str):
            raise BadRequest("field 'prompt_id' must be a string", extra={"field": "prompt_id"})
        jobs = self.gw.jobs
        if prompt_id:
            job = jobs.active.get(prompt_id)
            if job is None:
                return
            if job.state == QUEUED or (job.state == SUBMITTED and job.submitted_at is None):
                job.cancel_requested = "cancelled"
                self.gw.dispatcher.cancel_waiting(job)
                return
            targets = [job]
        else:
            targets = [j for j in jobs.active.values() if j.state == RUNNING]
        for job in targets:
            job.cancel_requested = job.cancel_requested or "interrupted"
        await asyncio.gather(*(self._interrupt_on_worker(job) for job in targets))

    async def _interrupt_on_worker(self, job) -> None:
        worker = self.gw.registry.get(job.worker_id) if job.worker_id is not None else None
        if worker is None:
            return
        if job.state == SUBMITTED:
            await self._post_to(worker, "/queue", {"delete": [job.prompt_id]})
        try:
            await worker.client.request("POST", "/interrupt", json_body={"prompt_id": job.prompt_id})
        except GatewayError as exc:
            logger.warning("interrupt on %s failed: %s", worker.name, exc.message)

    # ----- history -----------------------------------------------------------------------------------
    async def history_one(self, prompt_id: str, base_url: str) -> dict:
        """GET /history/{id}: the stored entry with gateway URLs, or {} while unfinished/unknown.

        A job its worker has just finished (its history is on the way) is waited for a moment, as a
        client that heard ``executing`` with node null asks for the history at once.
        """
        jobs = self.gw.jobs
        job = jobs.get(prompt_id)
        if job is not None and job.active and job.ended_on_worker:
            await jobs.wait_finished(prompt_id, HISTORY_WAIT_SECONDS)
            job = jobs.get(prompt_id)
        if job is None or (job.history is None and not job.active):
            job = await jobs.find_stored(prompt_id)  # another instance may have finished it
        if job is None or not job.history:
            return {}
        return {prompt_id: with_urls(job.history, prompt_id, base_url)}

    async def history_many(self, max_items: int | None, offset: int | None, base_url: str) -> dict:
        """GET /history: finished entries, oldest first, with ComfyUI's max_items/offset meaning."""
        listing = await self.gw.store.list_jobs(state=["done", "failed"], limit=1, offset=0, has_history=True)
        total = min(listing["total"], HISTORY_LIMIT)
        count = max_items if max_items is not None else total
        start = offset if offset is not None else max(0, total - count)
        count = max(0, min(count, total - start))
        if count == 0:
            return {}
        rows = (await self.gw.store.list_jobs(state=["done", "failed"], limit=count, include_payload=True,
                                              has_history=True,
                                              offset=max(0, total - start - count)))["items"]
        rows.sort(key=lambda row: (row.get("finished_at") or 0, row["seq"]))
        return {row["prompt_id"]: with_urls(row["history"], row["prompt_id"], base_url)
                for row in rows if row.get("history")}

    async def history_post(self, body: Any) -> None:
        """POST /history: forward delete/clear to the workers (the gateway keeps its job records)."""
        body = body if isinstance(body, dict) else {}
        _id_list(body, "delete")
        payload = {k: body[k] for k in ("clear", "delete") if k in body}
        if payload:
            await asyncio.gather(*(self._post_to(w, "/history", payload) for w in self._online()))

    async def _post_to(self, worker, path: str, payload: dict) -> None:
        try:
            await worker.client.request("POST", path, json_body=payload)
        except GatewayError as exc:
            logger.warning("POST %s to %s failed: %s", path, worker.name, exc.message)

    async def free(self, body: Any) -> None:
        """POST /free: pass to every online worker."""
        payload = body if isinstance(body, dict) else {}
        await asyncio.gather(*(self._post_to(w, "/free", payload) for w in self._online()))

    # ----- info routes ------------------------------------------------------------------------------
    def object_info(self, node_class: str | None = None) -> dict:
        """Every node type any online worker has; combo choices merged; uploads added to image loaders."""
        merged: dict = {}
        for worker in self._any_online():
            for name, info in (worker.object_info or {}).items():
                if node_class is not None and name != node_class:
                    continue
                if name not in merged:
                    merged[name] = copy.deepcopy(info)
                else:
                    _merge_combos(merged[name], info)
        uploads = sorted(self.gw.uploads.known_names())
        for name in UPLOAD_COMBO_NODES:
            spec = (merged.get(name) or {}).get("input", {}).get("required", {}).get("image")
            if spec and isinstance(spec[0], list):
                spec[0] = sorted(set(spec[0]) | set(uploads))
        return merged

    async def system_stats(self) -> dict:
        """The first online worker's system section; devices of every online worker, named by worker."""
        online = self._any_online()
        devices = []
        for worker in online:
            for device in worker.devices:
                devices.append({**device, "name": f"{worker.name}: {device.get('name', '')}"})
        system = dict(online[0].system)
        system["gateway_version"] = self.gw.version
        return {"system": system, "devices": devices}

    async def proxy_json(self, path: str) -> Any:
        """GET a JSON route from one online worker (the least loaded)."""
        worker = min(self._any_online(), key=lambda w: w.queue_remaining)
        return await worker.client.get_json(path)

    async def union_list(self, path: str) -> list | None:
        """The union of a list route over every online worker; None when no worker knows the path (404)."""
        results = await asyncio.gather(*(w.client.get_json(path) for w in self._any_online()),
                                       return_exceptions=True)
        lists = [r for r in results if isinstance(r, list)]
        if not lists:
            return None
        seen: list = []
        for items in lists:
            seen.extend(item for item in items if item not in seen)
        return seen


def _id_list(body: dict, field: str) -> list:
    """The list of prompt ids in a body field (absent: empty); BadRequest naming the field otherwise."""
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"field '{field}' must be a list of prompt ids (strings)", extra={"field": field})
    return value


def _merge_combos(target: dict, other: dict) -> None:
    for section in ("required", "optional"):
        mine = (target.get("input") or {}).get(section) or {}
        theirs = (other.get("input") or {}).get(section) or {}
        for name, spec in theirs.items():
            if name in mine and isinstance(spec, list) and spec and isinstance(spec[0], list) \
                    and isinstance(mine[name][0], list):
                mine[name][0] = mine[name][0] + [v for v in spec[0] if v not in mine[name][0]]
