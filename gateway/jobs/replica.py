"""Loading jobs from the store, and keeping the job state of an instance that does not dispatch current.

Mixed into JobService (the one owner of job state). The instance that holds the dispatcher lease loads
the unfinished jobs and moves them; every other instance keeps a replica: jobs it or another follower
accepted (``adopt``) and the changes the dispatcher made (``apply_update``), from the cluster's messages
or, when Redis is away, from the store. Listeners hear replicated changes like local ones, with
``applying_remote`` set so they are not sent on again.
"""

from __future__ import annotations

import asyncio
import logging

from ..scheduling.cost_model import workflow_signature
from .events import output_nodes
from .model import ACTIVE_STATES, FINAL_STATES, QUEUED, Job, Progress

logger = logging.getLogger(__name__)

LOAD_SLICE = 500  # jobs loaded per turn of the event loop

# The fields of a job that change after it was accepted, as other instances need them.
UPDATE_FIELDS = ("state", "worker_id", "attempts", "priority", "number", "seq", "error", "submitted_at",
                 "started_at", "finished_at")


def update_of(job: Job) -> dict:
    """What another instance needs to bring its copy of a job up to date (no workflow, no history)."""
    out = {name: getattr(job, name) for name in UPDATE_FIELDS}
    out["prompt_id"] = job.prompt_id
    out["progress"] = job.progress.to_dict()
    out["ending"] = job.ended_on_worker
    return out


class ReplicaMixin:
    """Job loading and replication; see the module docstring."""

    def _job_from_row(self, row: dict) -> Job:
        job = Job.from_row(row)
        job.priority_given = False
        progress = row.get("progress") or {}
        job.progress = Progress.from_dict(progress, int(progress.get("nodes_total") or 0))
        job.announced = True
        if not (job.state == QUEUED and isinstance(job.body_data, str)):
            self.derive(job)  # else when it is first read (derive), or by derive_loaded soon after
        return job

    def derive(self, job: Job) -> None:
        """Read what the gateway needs from a job's workflow (once): its signature, requirements, outputs.

        Jobs loaded at start-up come with their body as stored text and wait for this: a restart with
        100,000 waiting jobs is then ready in the time it takes to read the rows, and the workflows are
        parsed when the scheduler reaches them, or in slices right after (derive_loaded).
        """
        if job.requirements is not None:
            return
        body = job.body
        prompt = body.get("prompt") or {}
        job.body_data = body
        job.signature = workflow_signature(prompt)
        job.requirements = self.requirements_of(prompt)
        # Which nodes are outputs is in the workers' node lists (kept in the store while they are away).
        job.outputs_to_execute = output_nodes(prompt, self._a_node_list(), body.get("partial_execution_targets"))
        if not job.progress.nodes_total:
            job.progress.nodes_total = len(prompt)
        job.scheduler_view = None
        if job.state == QUEUED:
            job.pack()

    def _a_node_list(self) -> dict | None:
        """An online worker's /object_info, else the last one any worker had (until the workers change)."""
        cached = self._node_list_cache
        if cached is None or cached[0] != self.registry.version:
            workers = self.registry.all()
            info = next((w.object_info for w in workers if w.object_info and w.state == "online"), None) \
                or next((w.object_info for w in workers if w.object_info), None)
            cached = self._node_list_cache = (self.registry.version, info)
        return cached[1]

    async def derive_loaded(self, jobs: list[Job]) -> None:
        """Derive the loaded jobs a few hundred per turn of the event loop (requests go on meanwhile)."""
        for index, job in enumerate(jobs):
            if index % LOAD_SLICE == LOAD_SLICE - 1:
                await asyncio.sleep(0)
            if job.requirements is None and job.active:
                self.derive(job)

    async def load(self, recover: bool = True) -> list[Job]:
        """Load the unfinished jobs from the store (start-up, or taking over as dispatcher); returns them.

        What this instance held before (a replica) is replaced by the store's state. With ``recover``
        (the dispatcher), a job stopped while its POST travelled gets a send time, so the worker's next
        /queue says whether it arrived.
        """
        self.loading = True
        try:
            return await self._load(recover)
        finally:
            self.loading = False

    async def _load(self, recover: bool) -> list[Job]:
        rows = await self.store.load_unfinished_jobs(body_as_text=True)
        self._seq = max(self._seq, await self.store.max_job_seq() or 0)
        if self.shared_seq:
            await self.store.raise_job_counter(self._seq)
        self.reset_active()
        jobs = []
        for index, row in enumerate(rows):
            if index % LOAD_SLICE == LOAD_SLICE - 1:
                await asyncio.sleep(0)  # a deep queue loads for seconds: renewals and requests go on meanwhile
            job = self._job_from_row(row)
            if recover:
                job.progress = Progress(nodes_total=len(job.prompt) if job.requirements is not None else 0)
                if job.state != QUEUED and job.submitted_at is None:
                    job.submitted_at = job.created_at
            self._track(job)
            jobs.append(job)
        logger.info("loaded %d unfinished job(s)", len(jobs))
        task = asyncio.ensure_future(self.derive_loaded(jobs))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return jobs

    def reset_active(self) -> None:
        """Forget every unfinished job held in memory (before loading them again from the store)."""
        for job in list(self.active.values()):
            self._by_gateway_id.pop(job.gateway_job_id, None)
        self.active.clear()
        self._waiting.clear()
        self._on_worker.clear()

    def adopt(self, row: dict) -> Job | None:
        """Take in a job another instance accepted (its stored row); the known copy when there is one."""
        known = self.get(row.get("prompt_id"))
        if known is not None:
            return known
        job = self._job_from_row(row)
        self._seq = max(self._seq, job.seq)
        if job.state in ACTIVE_STATES:
            self._track(job)
        else:
            self._remember(job)
        self._tell_remote(job, "queued" if job.state == QUEUED else "submitted" if job.state in ACTIVE_STATES
                          else "finished")
        if self.dispatching and job.state == QUEUED:
            self.dispatcher.wake()
        return job

    def apply_update(self, update: dict, event: str | None = None) -> Job | None:
        """Apply the dispatcher's change of a job this instance knows (None when it does not)."""
        job = self.get(update.get("prompt_id"))
        if job is None:
            return None
        before, worker_before = job.state, job.worker_id
        for name in UPDATE_FIELDS:
            if name in update:
                setattr(job, name, update[name])
        worker_id = job.worker_id
        job.state, job.worker_id = before, worker_before  # moved below, with the indexes
        progress = update.get("progress")
        if isinstance(progress, dict):
            job.progress = Progress.from_dict(progress, int(progress.get("nodes_total") or job.progress.nodes_total))
        job.ended_on_worker = bool(update.get("ending"))
        job.scheduler_view = None
        state = update.get("state", before)
        if state in FINAL_STATES and job.prompt_id in self.active:
            self.place(job, state, worker_id)
            self.active.pop(job.prompt_id, None)
            self._remember(job)
        elif job.prompt_id in self.active:
            self.place(job, state, worker_id)
        else:
            job.state, job.worker_id = state, worker_id
        self._tell_remote(job, event or transition_event(before, state))
        return job

    def _remember(self, job: Job) -> None:
        """Keep a finished job among the recent ones."""
        self.recent[job.prompt_id] = job
        self._by_gateway_id[job.gateway_job_id] = job.prompt_id
        while len(self.recent) > self.recent_limit:
            _, old = self.recent.popitem(last=False)
            self._by_gateway_id.pop(old.gateway_job_id, None)

    def _tell_remote(self, job: Job, event: str) -> None:
        self.applying_remote = True
        try:
            self.notify(job, event)
        finally:
            self.applying_remote = False


def transition_event(before: str, after: str) -> str:
    """The job event a state change means (as the dispatcher's own code names it)."""
    if after in FINAL_STATES:
        return "finished"
    if after == before:
        return "progress"
    return {"queued": "queued", "submitted": "submitted", "running": "started"}.get(after, "progress")
