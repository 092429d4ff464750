"""Requests that wait for a job: until it ends (POST /prompt with ``wait``) or until its state changes
(GET /task/{id}/status?wait=, a long poll).

One listener on the JobService wakes them, so they work the same on the dispatcher and on a replica
(replicated changes reach listeners too), and nothing polls the store. A waiter is keyed by prompt id,
so a job this instance does not hold yet wakes it once a change of it arrives. Waiting never touches the
job: a client that goes away only drops its own waiter.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import BadRequest
from ..files.outputs import with_urls
from .model import DONE, FINAL_STATES, Job

logger = logging.getLogger(__name__)

END, CHANGE = "end", "change"


@dataclass
class _Waiter:
    until: str  # END: the job is done or failed; CHANGE: its state differs from `seen`
    seen: str | None
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def satisfied_by(self, state: str) -> bool:
        return state in FINAL_STATES or (self.until == CHANGE and state != self.seen)


def parse_wait(raw: Any, where: str) -> float | None:
    """Seconds to wait from a body field (number) or a query value (text); None when not given."""
    if raw is None or raw == "":
        return None
    value = raw
    if isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadRequest(f"{where} 'wait' must be a number of seconds, 0 or more", extra={"field": "wait"})
    return float(value)


class JobWaits:
    """Holds the waiting requests of this instance and wakes them on job changes."""

    def __init__(self, jobs, max_seconds: Callable[[], float]):
        self.jobs = jobs
        self._max_seconds = max_seconds
        self._waiters: dict[str, list[_Waiter]] = {}
        self.count = 0  # requests waiting now (/metrics)
        self.closed = False  # shutting down: nothing waits any more
        jobs.add_listener(self._on_job)

    def bound(self, seconds: float) -> float:
        """A requested wait cut to the configured maximum."""
        return max(0.0, min(seconds, self._max_seconds()))

    def _on_job(self, job: Job, _event: str) -> None:
        waiters = self._waiters.get(job.prompt_id)
        if not waiters:
            return
        for waiter in [w for w in waiters if w.satisfied_by(job.state)]:
            waiters.remove(waiter)
            if not waiter.future.done():
                waiter.future.set_result(None)
        if not waiters:
            del self._waiters[job.prompt_id]

    async def current(self, prompt_id: str) -> Job | None:
        """The job as this instance knows it now: memory, else the store."""
        return await self.jobs.find(prompt_id)

    async def wait(self, job: Job, seconds: float, until: str) -> Job:
        """The job once it ended (END) or changed state (CHANGE), or as it is after `seconds`.

        Cancelling the caller (a client that went away) drops only the waiter.
        """
        seconds = self.bound(seconds)
        if job.state in FINAL_STATES or seconds <= 0 or self.closed:
            return job
        waiter = _Waiter(until, job.state)
        self._waiters.setdefault(job.prompt_id, []).append(waiter)
        self.count += 1
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            self.count -= 1
            waiters = self._waiters.get(job.prompt_id)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[job.prompt_id]
        # Read again: a job this instance reloaded meanwhile (a takeover) is a new object.
        return await self.current(job.prompt_id) or job

    def release_all(self) -> None:
        """Answer every waiting request now, with the job as it is, and wait no more (shutdown)."""
        self.closed = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_result(None)
        self._waiters.clear()

    async def result(self, job: Job, base_url: str) -> dict:
        """A finished job as wait mode and webhooks give it (see ``job_result``)."""
        history = job.history
        if history is None:
            # A replica holds no history (it is not replicated), and a job read back may lack it.
            stored = await self.jobs.find_stored(job.prompt_id)
            history = stored.history if stored is not None else None
        return job_result(job, history, base_url, self.jobs.worker_name(job))


def job_result(job: Job, history: dict | None, base_url: str, worker_name: str | None) -> dict:
    """The end of a job in ComfyUI's history-entry shape (outputs with a gateway ``url`` on every file,
    status, meta) plus ``state``, ``files`` (every output file in one list) and ``job`` (the status)."""
    entry = with_urls(history, job.prompt_id, base_url) if history else {}
    outputs = entry.get("outputs") or {}
    status = entry.get("status") or {"status_str": "success" if job.state == DONE else "error",
                                     "completed": job.state == DONE, "messages": []}
    return {"prompt_id": job.prompt_id, "state": job.state, "outputs": outputs, "status": status,
            "meta": entry.get("meta") or {}, "files": output_files(outputs), "error": job.error,
            "job": job.status_dict(worker_name, None)}


def output_files(outputs: dict) -> list[dict]:
    """Every file entry of history outputs in one list: node id, kind (images, gifs, audio...), filename,
    subfolder, type and url."""
    files = []
    for node_id, node_output in outputs.items():
        if not isinstance(node_output, dict):
            continue
        for kind, entries in node_output.items():
            for entry in entries if isinstance(entries, list) else ():
                if isinstance(entry, dict) and isinstance(entry.get("filename"), str):
                    files.append({"node": node_id, "kind": kind, "filename": entry["filename"],
                                  "subfolder": entry.get("subfolder") or "", "type": entry.get("type") or "output",
                                  "url": entry.get("url")})
    return files
