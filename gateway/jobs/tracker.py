"""Follows dispatched jobs to their end: worker events, /queue snapshots, lost workers, restarts."""

from __future__ import annotations

import asyncio
import logging
import time

from ..errors import GatewayError
from .events import OUTCOME_SUCCESS, apply_event, outcome_from_history
from .model import DONE, FAILED, RUNNING, SUBMITTED, Job

logger = logging.getLogger(__name__)

HUNG_GRACE_SECONDS = 60.0  # a job running on a worker that stopped answering (may be alive) waits this long
HISTORY_ATTEMPTS = 3


def queue_items(queue: dict, key: str) -> list:
    """The well-formed items of a worker's /queue list (a broken worker must not break the gateway)."""
    items = queue.get(key) if isinstance(queue, dict) else None
    return [item for item in items or () if isinstance(item, list) and len(item) > 1 and isinstance(item[1], str)] \
        if isinstance(items, list) else []


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


class JobTracker:
    """Turns what workers report into job state changes; asks the dispatcher to requeue or retry."""

    def __init__(self, jobs, dispatcher, registry, outputs, settings):
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.registry = registry
        self.outputs = outputs
        self._settings = settings
        self._finalizing: dict[str, asyncio.Task] = {}

    # ----- live events (from the worker monitor) ------------------------------------------------
    def on_event(self, worker, event_type: str, data: dict) -> Job | None:
        """Apply one JSON event from a worker's socket; returns the gateway job it belongs to."""
        prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
        job = self.jobs.active.get(prompt_id) if prompt_id else None
        if job is None or job.worker_id != worker.id:
            return job or (self.jobs.get(prompt_id) if prompt_id else None)
        change = apply_event(job, event_type, data, time.time())
        if change == "started":
            worker.running_prompt_ids = (job.prompt_id,)
            self.jobs.save(job, "state", "started_at")
            if job.cancel_requested:
                asyncio.ensure_future(self._interrupt(worker, job))
            self.jobs.notify(job, "started")
        elif change == "finished":
            self.finalize(job, worker)
        elif change == "progress":
            self.jobs.notify(job, "progress")
        return job

    def finalize(self, job: Job, worker, entry: dict | None = None) -> asyncio.Task | None:
        """End a job: fetch its history from the worker (unless given) and record the outcome."""
        if job.prompt_id in self._finalizing or not job.active:
            return self._finalizing.get(job.prompt_id)
        job.ended_on_worker = True  # its slot on the worker is free from now on
        self.dispatcher.wake()
        self.jobs.notify(job, "ending")  # its history is on the way: a /history asked now waits for it
        task = asyncio.ensure_future(self._finalize(job, worker, entry))
        self._finalizing[job.prompt_id] = task
        task.add_done_callback(lambda _t: self._finalizing.pop(job.prompt_id, None))
        return task

    async def _finalize(self, job: Job, worker, entry: dict | None) -> None:
        if entry is None:
            entry = await self._fetch_history(job, worker)
        if not job.active or job.worker_id != worker.id:
            return  # moved on while the history was fetched (retried elsewhere, cancelled)
        if entry:
            state, error = outcome_from_history(entry)
            if job.cancel_requested and state == FAILED and error and error.get("type") == "interrupted":
                error["type"] = job.cancel_requested
            entry = self._restore_client(job, entry)
            await self.outputs.record(job.prompt_id, worker.id, entry.get("outputs") or {})
        else:
            state = DONE if job.outcome == OUTCOME_SUCCESS else FAILED
            error = job.error if state == FAILED else None
            if state == FAILED and error is None:
                error = {"type": "execution_error", "message": "the job ended without a history entry"}
        if job.started_at is None:
            job.started_at = job.submitted_at
        if worker.running_prompt_ids == (job.prompt_id,):
            worker.running_prompt_ids = ()
        self.jobs.finish(job, state, error, entry or None)

    async def _fetch_history(self, job: Job, worker) -> dict | None:
        for attempt in range(HISTORY_ATTEMPTS):
            try:
                body = await worker.client.get_json(f"/history/{job.prompt_id}")
                if isinstance(body, dict) and job.prompt_id in body:
                    return body[job.prompt_id]
            except GatewayError as exc:
                logger.warning("history of %s from %s: %s", job.prompt_id, worker.name, exc.message)
            await asyncio.sleep(0.2 * (attempt + 1))
        return None

    def _restore_client(self, job: Job, entry: dict) -> dict:
        """Put the client's own client_id back where the worker stored the gateway's."""
        entry = dict(entry)
        prompt = entry.get("prompt")
        if isinstance(prompt, list) and len(prompt) >= 4:
            prompt = list(prompt)
            prompt[0] = job.comfy_number()
            prompt[2] = job.prompt
            prompt[3] = job.extra_data
            entry["prompt"] = prompt
        return entry

    async def _interrupt(self, worker, job: Job) -> None:
        try:
            await worker.client.request("POST", "/interrupt", json_body={"prompt_id": job.prompt_id})
        except GatewayError as exc:
            logger.warning("interrupt of %s on %s failed: %s", job.prompt_id, worker.name, exc.message)

    # ----- polling (health checks) -----------------------------------------------------------------
    async def on_queue(self, worker, queue: dict, snapshot_started: float) -> None:
        """A fresh /queue of a worker: update its load and settle jobs the events did not."""
        running = [item[1] for item in queue_items(queue, "queue_running")]
        pending = [item[1] for item in sorted(queue_items(queue, "queue_pending"),
                                              key=lambda item: (_number(item[0]), item[1]))]
        worker.queue_remaining = len(running) + len(pending)
        worker.queue_snapshot = (time.time(), queue)
        worker.running_prompt_ids, worker.pending_prompt_ids = tuple(running), tuple(pending)
        worker.sent_since_report = sum(1 for j in self.jobs.active_on(worker.id)
                                       if j.submitted_at is None or j.submitted_at >= snapshot_started)
        present = set(running) | set(pending)
        for job in self.jobs.active_on(worker.id):
            job.lost_since = None
            if job.submitted_at is None or job.submitted_at >= snapshot_started:
                continue  # sent after the snapshot was asked for: the snapshot cannot show it yet
            if job.prompt_id in running and job.state == SUBMITTED:
                job.state, job.started_at = RUNNING, job.started_at or time.time()
                self.jobs.save(job, "state", "started_at")
                self.jobs.notify(job, "started")
            elif job.prompt_id not in present and job.prompt_id not in self._finalizing:
                await self._settle_missing(job, worker)
        await self._drop_stale_copies(worker, present)
        if self.dispatcher.has_room(worker):
            # Only a worker with room can take a job; hundreds of routine checks per second of full
            # workers would otherwise each start a scheduling round that finds nothing to move.
            self.dispatcher.wake()

    async def _settle_missing(self, job: Job, worker) -> None:
        """A job its worker no longer lists: finished (history has it) or lost (worker restarted)."""
        entry = await self._fetch_history(job, worker)
        if not job.active or job.worker_id != worker.id:
            return
        if entry:
            task = self.finalize(job, worker, entry)
            if task is not None:
                await task
        else:
            self.lost(job, worker, started=job.state == RUNNING, reason=f"worker {worker.name} lost the job")

    async def _drop_stale_copies(self, worker, present: set) -> None:
        """Remove from a worker's queue gateway jobs that were moved elsewhere (never run twice)."""
        stale = [pid for pid in present if (job := self.jobs.active.get(pid)) and job.worker_id != worker.id
                 and pid not in worker.running_prompt_ids]
        if stale:
            logger.info("removing %d job(s) moved elsewhere from %s", len(stale), worker.name)
            await self._delete_from_queue(worker, stale)

    # ----- failures ------------------------------------------------------------------------------------
    def lost(self, job: Job, worker, started: bool, reason: str) -> None:
        """A job whose worker lost it: requeue, retry elsewhere or fail, as the scheduler rules."""
        max_retries = self._settings().max_retries
        if started:
            job.attempts += 1  # counts lost runs, this one included
            job.excluded_workers.add(worker.id)
        action = self.dispatcher.scheduler.after_worker_lost(started, job.attempts, max_retries)
        if action == "fail":
            self.jobs.finish(job, FAILED, {"type": "worker_lost", "message": f"{reason}; "
                                           f"gave up after {job.attempts} attempt(s)", "worker": worker.name})
            return
        self.dispatcher._requeue(job, reason)
        if started:
            self.jobs.save(job, "attempts")

    async def on_worker_lost(self, worker) -> None:
        """A worker went offline: its waiting jobs come back; running ones are retried once it is surely dead."""
        refused = "refused" in (worker.last_error or "").lower() or "unreachable" in (worker.last_error or "")
        for job in self.jobs.active_on(worker.id):
            if job.prompt_id in self._finalizing:
                continue  # it ended there; its history is being collected
            if job.state == SUBMITTED:
                self.lost(job, worker, started=False, reason=f"worker {worker.name} went offline")
            elif refused or (job.lost_since and time.time() - job.lost_since > HUNG_GRACE_SECONDS):
                self.lost(job, worker, started=True, reason=f"worker {worker.name} died while running it")
            else:
                job.lost_since = job.lost_since or time.time()
                asyncio.get_running_loop().call_later(HUNG_GRACE_SECONDS + 1,
                                                      lambda w=worker: asyncio.ensure_future(self._recheck(w)))

    async def _recheck(self, worker) -> None:
        if worker.status == "offline":
            await self.on_worker_lost(worker)

    def on_worker_removed(self, worker) -> None:
        """A worker was deleted: its jobs move elsewhere (taken off its queue, a running one stopped)."""
        jobs = self.jobs.active_on(worker.id)
        waiting = [job.prompt_id for job in jobs if job.state == SUBMITTED]
        if waiting:
            asyncio.ensure_future(self._delete_from_queue(worker, waiting))
        for job in jobs:
            if job.prompt_id in self._finalizing:
                continue
            if job.state == RUNNING:
                asyncio.ensure_future(self._interrupt(worker, job))
            self.lost(job, worker, started=job.state == RUNNING, reason=f"worker {worker.name} was removed")

    def on_worker_disabled(self, worker) -> None:
        """A worker was disabled: jobs waiting on it move elsewhere; the running one finishes there."""
        waiting = [job for job in self.jobs.active_on(worker.id) if job.state == SUBMITTED]
        for job in waiting:
            self.lost(job, worker, started=False, reason=f"worker {worker.name} was disabled")
        if waiting:
            asyncio.ensure_future(self._delete_from_queue(worker, [job.prompt_id for job in waiting]))

    async def _delete_from_queue(self, worker, prompt_ids: list) -> None:
        try:
            await worker.client.request("POST", "/queue", json_body={"delete": prompt_ids})
        except GatewayError as exc:
            logger.warning("could not remove jobs from %s: %s", worker.name, exc.message)
