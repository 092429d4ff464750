"""Gateway job routes: one job's status (by prompt_id or gateway_job_id) and the paged job list."""

from __future__ import annotations

import itertools
import re
import time

from ..cluster.forward import forward_to_dispatcher
from ..errors import BadRequest, ComfyError, GatewayError, NotFound
from ..jobs.model import STATES, Job
from ..jobs.waits import CHANGE
from .base import BaseHandler
from .waiting import WaitingMixin

MAX_PAGE = 500
MAX_RESUBMIT = 100
ID_PREFIX = re.compile(r"^[A-Za-z0-9-]{1,64}$")  # id characters only: no LIKE wildcards reach the query


class TaskStatusHandler(WaitingMixin, BaseHandler):
    """GET /api/task/{prompt_id}/status[?wait=s]: the ComfyUI-side view (queued | running | done | failed);
    with wait, answered once the job's state changes (or at once when it is final), or after `wait` seconds."""

    async def get(self, prompt_id: str) -> None:
        wait = self.requested_wait()
        job = await self.gw.jobs.find(prompt_id)
        if job is None:
            raise NotFound(f"no job with prompt_id {prompt_id}")
        if wait is not None:
            job = await self.wait_for_job(job, wait, CHANGE)
            if job is None:
                return  # the client went away
        self.write_json(job.status_dict(self.gw.jobs.worker_name(job), self.gw.jobs.position(job)))


class TaskTimelineHandler(BaseHandler):
    """GET /api/task/{prompt_id}/timeline: the job's steps (queued, sent, started, lost, done...), oldest first."""

    async def get(self, prompt_id: str) -> None:
        job = await self.gw.jobs.find(prompt_id)
        if job is None:
            raise NotFound(f"no job with prompt_id {prompt_id}")
        self.write_json({"prompt_id": prompt_id, "steps": await self.gw.timeline.steps(prompt_id)})


class GatewayTaskHandler(BaseHandler):
    """GET /api/task/gateway/{gateway_job_id}: queued | submitted | running | done | failed, with prompt_id."""

    async def get(self, gateway_job_id: str) -> None:
        job = await self.gw.jobs.find_by_gateway_id(gateway_job_id)
        if job is None:
            raise NotFound(f"no job with gateway_job_id {gateway_job_id}")
        self.write_json(job.gateway_dict(self.gw.jobs.worker_name(job), self.gw.jobs.position(job)))


class TaskPriorityHandler(BaseHandler):
    """PATCH /api/task/{prompt_id}: change the priority of a job still waiting in the gateway."""

    async def patch(self, prompt_id: str) -> None:
        body = self.json_body()
        priority = body.get("priority") if isinstance(body, dict) else None
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise BadRequest("field 'priority' must be an integer", extra={"field": "priority"})
        if await forward_to_dispatcher(self):
            return
        job = await self.gw.jobs.set_priority(prompt_id, priority)
        self.write_json(job.status_dict(self.gw.jobs.worker_name(job), self.gw.jobs.position(job)))


def _query_int(handler: BaseHandler, name: str, default: int, low: int, high: int) -> int:
    raw = handler.get_query_argument(name, None)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be an integer", extra={"field": name}) from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter '{name}' must be between {low} and {high}", extra={"field": name})
    return value


def _query_time(handler: BaseHandler, name: str) -> float | None:
    raw = handler.get_query_argument(name, None)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be a Unix time in seconds", extra={"field": name}) from None


def _query_prefix(handler: BaseHandler) -> str | None:
    raw = handler.get_query_argument("q", None)
    if raw in (None, ""):
        return None
    raw = raw.strip()
    if not ID_PREFIX.match(raw):
        raise BadRequest("query parameter 'q' must be the start of a prompt id or gateway job id (letters, digits "
                         "and '-', at most 64)", extra={"field": "q"})
    return raw.lower()


class TasksHandler(BaseHandler):
    """GET /api/tasks?state=&worker=&client_id=&q=&since=&until=&limit=&offset=: jobs, newest first."""

    async def get(self) -> None:
        states = [s for s in self.get_query_argument("state", "").split(",") if s]
        bad = [s for s in states if s not in STATES]
        if bad:
            raise BadRequest(f"query parameter 'state' must be among {', '.join(STATES)}; got {bad[0]!r}",
                             extra={"field": "state"})
        worker = self.get_query_argument("worker", None)
        worker_id = None
        if worker:
            worker_id = self.gw.registry.require(worker).id if worker.isdigit() else next(
                (w.id for w in self.gw.registry.all() if w.name == worker), -1)
        limit = _query_int(self, "limit", 50, 1, MAX_PAGE)
        offset = _query_int(self, "offset", 0, 0, 10**9)
        page = await self.gw.store.list_jobs(state=states or None, worker_id=worker_id,
                                             client_id=self.get_query_argument("client_id", None) or None,
                                             since=_query_time(self, "since"), until=_query_time(self, "until"),
                                             limit=limit, offset=offset, id_prefix=_query_prefix(self))
        # The page's rows come without their workflows (they can be large); one more query reads only the
        # workflows of the jobs not in memory, to summarise them.
        stored = [row["prompt_id"] for row in page["items"] if self.gw.jobs.get(row["prompt_id"]) is None]
        prompts = await self.gw.store.job_prompts(stored)
        output_types = self._output_types()
        items = [self._item(row, prompts, output_types) for row in page["items"]]
        self.write_json({"items": items, "total": page["total"], "limit": limit, "offset": offset,
                         "generated_at": time.time()})

    def _output_types(self):
        """Whether a node type is an output node, as the workers' object_info says (cached per call)."""
        known: dict = {}
        workers = [w for w in self.gw.registry.all() if w.object_info]

        def is_output(class_type) -> bool:
            if class_type not in known:
                known[class_type] = any((w.object_info.get(class_type) or {}).get("output_node") for w in workers)
            return known[class_type]
        return is_output

    def _item(self, row: dict, prompts: dict, is_output) -> dict:
        jobs = self.gw.jobs
        live = jobs.get(row["prompt_id"])
        job = live or Job.from_row(row)
        out = job.status_dict(jobs.worker_name(job), jobs.position(job) if live else None)
        prompt = job.prompt if live else prompts.get(row["prompt_id"]) or {}
        nodes = [n.get("class_type") for n in prompt.values() if isinstance(n, dict)]
        out["class_types"] = sorted({n for n in nodes if isinstance(n, str)})
        out["nodes"] = len(nodes)
        out["outputs"] = sum(1 for n in nodes if isinstance(n, str) and is_output(n))
        return out


class GatewayQueueHandler(BaseHandler):
    """GET /api/tasks/queue?limit=&offset=: the jobs waiting in the gateway in the order they will be dispatched,
    each with its 1-based queue_position (re-order them by changing priorities)."""

    async def get(self) -> None:
        limit = _query_int(self, "limit", 50, 1, MAX_PAGE)
        offset = _query_int(self, "offset", 0, 0, 10**9)
        jobs = self.gw.jobs
        page = itertools.islice(jobs.waiting_in_order(), offset, offset + limit)  # the queue may be 100,000 long
        items = [job.status_dict(jobs.worker_name(job), offset + index + 1) for index, job in enumerate(page)]
        self.write_json({"items": items, "total": jobs.waiting_count, "limit": limit, "offset": offset,
                         "generated_at": time.time()})


class TasksResubmitHandler(BaseHandler):
    """POST /api/tasks/resubmit {"prompt_ids": [...]}: submit the workflows of finished jobs again, as new jobs
    (same workflow, extra_data, client_id and priority); the answer lists each new prompt_id or its error."""

    needs_admin = True

    async def post(self) -> None:
        body = self.json_body()
        ids = body.get("prompt_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > MAX_RESUBMIT \
                or not all(isinstance(i, str) and i for i in ids):
            raise BadRequest(f"field 'prompt_ids' must be a list of 1 to {MAX_RESUBMIT} prompt ids",
                             extra={"field": "prompt_ids"})
        submitted, errors = [], []
        for prompt_id in dict.fromkeys(ids):
            try:
                new_id = await self._resubmit(prompt_id)
                submitted.append({"from": prompt_id, "prompt_id": new_id})
            except GatewayError as exc:
                errors.append({"prompt_id": prompt_id, **exc.to_json()})
            except ComfyError as exc:
                error = exc.body.get("error") if isinstance(exc.body, dict) else None
                errors.append({"prompt_id": prompt_id, "error": error if isinstance(error, dict) else
                               {"type": "http_error", "message": str(error or exc.status)}})
        self.write_json({"submitted": submitted, "errors": errors})

    async def _resubmit(self, prompt_id: str) -> str:
        row = await self.gw.store.get_job(prompt_id)
        if row is None:
            raise NotFound(f"no job with prompt_id {prompt_id}")
        if row["state"] not in ("done", "failed"):
            raise BadRequest(f"job {prompt_id} is {row['state']}; only finished jobs can be submitted again",
                             type="conflict", status=409)
        old = row.get("body") or {}
        body = {"prompt": old.get("prompt"), "extra_data": old.get("extra_data") or {}, "priority": row["priority"]}
        if row.get("client_id"):
            body["client_id"] = row["client_id"]
        self.gw.admission.check(self.token)
        status, answer = await self.gw.jobs.submit(body)
        if status != 200:
            raise ComfyError(status, answer)
        self.gw.admission.track(answer["prompt_id"], self.token)
        return answer["prompt_id"]


def task_routes() -> list:
    """Routes of this module."""
    return [
        (r"/api/task/gateway/([^/]+)", GatewayTaskHandler),
        (r"/api/task/([^/]+)/status", TaskStatusHandler),
        (r"/api/task/([^/]+)/timeline", TaskTimelineHandler),
        (r"/api/task/([^/]+)", TaskPriorityHandler),
        (r"/api/tasks", TasksHandler),
        (r"/api/tasks/resubmit", TasksResubmitHandler),
        (r"/api/tasks/queue", GatewayQueueHandler),
    ]
