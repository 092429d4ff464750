"""Webhooks: when a job that named a `webhook` URL ends, its status goes to the outbox for delivery."""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)


class WebhookSender:
    """Listens for finished jobs and puts a notification for their webhook URL in the outbox."""

    def __init__(self, jobs, outbox):
        self.jobs = jobs
        self.outbox = outbox
        jobs.add_listener(self._on_job)

    def _on_job(self, job, event: str) -> None:
        if self.jobs.applying_remote:
            return  # another instance dispatched it: that one notifies
        if event == "finished" and job.webhook:
            body = job.status_dict(self.jobs.worker_name(job), None)
            task = asyncio.ensure_future(self.outbox.add(job.prompt_id, job.webhook,
                                                         {"event": "job_finished", "job": body}))
            task.add_done_callback(_report)


def _report(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("could not store a webhook notification: %s", task.exception())
