"""Each job's timeline in the store: queued, sent to W, started, worker lost, back in the queue, done or failed.

Steps are read from the job service's change events and written in small batches by the dispatcher
only (under its lease epoch, like job rows): a follower applying the dispatcher's changes writes
nothing, and a dispatcher that lost its lease has its batch refused by the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from ..store import FencedError

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25  # steps are batched: one store call per burst, not one per event
MAX_PENDING = 5000  # steps waiting for the store; beyond that the oldest are dropped (logged)
MAX_TRACKED = 50000  # jobs whose last step is remembered (active ones; finished ones are forgotten)
DETAIL_CHARS = 255


class JobTimeline:
    """Listens to job changes and records the steps of each job's life."""

    def __init__(self, jobs, store):
        self.jobs = jobs
        self.store = store
        self._last: OrderedDict[str, tuple[str, int | None, str | None]] = OrderedDict()  # id -> (kind, worker)
        self._pending: list[dict] = []
        self._flush_handle: asyncio.Handle | None = None
        self._writing: set = set()
        self.dropped = 0
        jobs.add_listener(self._on_job)

    # ----- reading -------------------------------------------------------------------------------
    async def steps(self, prompt_id: str) -> list[dict]:
        """The job's steps, oldest first (stored ones plus those still on their way to the store)."""
        stored = await self.store.job_events(prompt_id)
        waiting = [{k: row[k] for k in ("at", "kind", "worker_id", "worker", "detail")}
                   for row in self._pending if row["prompt_id"] == prompt_id]
        return stored + waiting

    # ----- recording -----------------------------------------------------------------------------
    def _on_job(self, job, event: str) -> None:
        if self.jobs.applying_remote or self.jobs.fence is None:
            return  # not the dispatcher: the one that is records the step
        if event not in ("queued", "submitted", "started", "finished"):
            return  # progress and the like are not steps
        now = time.time()
        previous = self._last.get(job.prompt_id)
        worker_id = job.worker_id
        worker = self.jobs.worker_name(job)
        if previous is None and event != "queued":
            self._add(job.prompt_id, job.created_at, "queued", None, None, None)
        if event == "queued":
            if previous is None:
                self._add(job.prompt_id, job.created_at, "queued", None, None, None)
            elif previous[0] in ("sent", "started"):
                # Back in the gateway queue from that worker: lost while running, or it could not take it.
                kind = "lost" if previous[0] == "started" else "requeued"
                self._add(job.prompt_id, now, kind, previous[1], previous[2], None)
            else:
                self._add(job.prompt_id, now, "priority", None, None, str(job.priority))
        elif event == "submitted":
            self._add(job.prompt_id, now, "sent", worker_id, worker, None)
        elif event == "started":
            if previous is None or previous[0] != "sent" or previous[1] != worker_id:
                # The worker's own events can say "started" before its answer to the send came back.
                # Its send is dated no later than the start (the answer's time, submitted_at, may be after).
                self._add(job.prompt_id, min(job.submitted_at or now, job.started_at or now), "sent", worker_id,
                          worker, None)
            self._add(job.prompt_id, job.started_at or now, "started", worker_id, worker, None)
        elif event == "finished":
            error = job.error or {}
            detail = f"{error.get('type', '')}: {error.get('message', '')}"[:DETAIL_CHARS] if error else None
            self._add(job.prompt_id, job.finished_at or now, job.state, worker_id, worker, detail)
            self._last.pop(job.prompt_id, None)
            return
        self._remember(job.prompt_id, self._pending[-1] if self._pending else None)

    def _remember(self, prompt_id: str, row: dict | None) -> None:
        if row is None or row["prompt_id"] != prompt_id:
            return
        self._last[prompt_id] = (row["kind"], row["worker_id"], row["worker"])
        self._last.move_to_end(prompt_id)
        while len(self._last) > MAX_TRACKED:
            self._last.popitem(last=False)

    def _add(self, prompt_id, at, kind, worker_id, worker, detail) -> None:
        self._pending.append({"prompt_id": prompt_id, "at": at, "kind": kind, "worker_id": worker_id,
                              "worker": (worker or None) and worker[:DETAIL_CHARS], "detail": detail})
        if len(self._pending) > MAX_PENDING:
            drop = len(self._pending) - MAX_PENDING
            del self._pending[:drop]
            self.dropped += drop
            logger.warning("job timeline: %d step(s) dropped, the store is not keeping up", drop)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        rows, self._pending = self._pending, []
        if not rows:
            return
        write = asyncio.ensure_future(self.store.add_job_events(rows, self.jobs.fence))
        self._writing.add(write)
        write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future) -> None:
        self._writing.discard(write)
        if write.cancelled() or write.exception() is None:
            return
        if isinstance(write.exception(), FencedError):
            logger.debug("job timeline steps not written: %s", write.exception())
        else:
            logger.error("could not store job timeline steps: %s", write.exception())

    async def flush(self) -> None:
        """Write what is pending now and wait for it (shutdown, tests)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()
        if self._writing:
            await asyncio.gather(*list(self._writing), return_exceptions=True)
