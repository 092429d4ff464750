"""Answering when a job ends or changes: wait mode of POST /prompt and the long poll of a job's status.

The waiting itself is JobWaits' (jobs/waits.py); this mixin adds what belongs to the request: the
``wait`` parameter, and stopping the wait (only the wait) when the client hangs up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import BadRequest
from ..jobs.model import FINAL_STATES, Job
from ..jobs.waits import END, parse_wait


class WaitingMixin:
    """For handlers that may hold a request open until a job moves."""

    _wait_task: asyncio.Future | None = None
    _client_gone = False

    def on_connection_close(self) -> None:
        self._client_gone = True
        task = self._wait_task
        if task is not None and not task.done():
            task.cancel()  # the waiter goes; the job is not touched
        super().on_connection_close()

    def requested_wait(self, body: Any = None) -> float | None:
        """The ``wait`` of this request (query, or a field of a JSON object body); None when not asked."""
        query = parse_wait(self.get_query_argument("wait", None), "query parameter")
        field = parse_wait(body.get("wait"), "field") if isinstance(body, dict) else None
        if query is not None and field is not None and query != field:
            raise BadRequest("'wait' is given twice with different values (query and body); give it once",
                             extra={"field": "wait"})
        return field if field is not None else query

    async def wait_for_job(self, job: Job, seconds: float, until: str) -> Job | None:
        """The job after waiting (see JobWaits.wait); None when the client went away meanwhile."""
        self._wait_task = asyncio.ensure_future(self.gw.waits.wait(job, seconds, until))
        try:
            return await self._wait_task
        except asyncio.CancelledError:
            if self._client_gone:
                return None
            raise
        finally:
            self._wait_task = None

    async def answer_when_done(self, answer: dict, seconds: float) -> None:
        """Wait mode: the submit answer plus the job's end (200), or plus its status at the timeout (202)."""
        waits = self.gw.waits
        job = await waits.current(answer["prompt_id"])
        if job is None:  # cannot happen for a job just accepted; answer as without wait
            self.write_json(answer)
            return
        job = await self.wait_for_job(job, seconds, END)
        if job is None:
            return
        if job.state in FINAL_STATES:
            self.write_json({**answer, **await waits.result(job, self.base_url())})
            return
        jobs = self.gw.jobs
        self.write_json({**answer, "state": job.state, "job": job.status_dict(jobs.worker_name(job),
                                                                               jobs.position(job))}, 202)
