"""Webhooks: when a job that named a `webhook` URL ends, its end goes to the outbox for delivery: the same
body as wait mode's answer (state, outputs and every file with its download url, the job's status)."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..jobs.waits import job_result

logger = logging.getLogger(__name__)


class WebhookSender:
    """Listens for finished jobs and puts a notification for their webhook URL in the outbox."""

    def __init__(self, jobs, outbox, base_url: Callable[[], str]):
        self.jobs = jobs
        self.outbox = outbox
        self.base_url = base_url  # no request to take the address from: public_url or the instance's own
        jobs.add_listener(self._on_job)

    def _on_job(self, job, event: str) -> None:
        if self.jobs.applying_remote:
            return  # another instance dispatched it: that one notifies
        if event == "finished" and job.webhook:
            # The dispatcher finished the job here, so its history is in memory.
            result = job_result(job, job.history, self.base_url(), self.jobs.worker_name(job))
            task = asyncio.ensure_future(self.outbox.add(job.prompt_id, job.webhook,
                                                         {"event": "job_finished", **result}))
            task.add_done_callback(_report)


def _report(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("could not store a webhook notification: %s", task.exception())
