"""Webhooks: when a job that named a `webhook` URL ends, POST its status there (retried a few times)."""

from __future__ import annotations

import asyncio
import json
import logging

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

logger = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT = 10.0


class WebhookSender:
    """Listens for finished jobs and notifies their webhook URL."""

    def __init__(self, jobs):
        self.jobs = jobs
        self._tasks: set[asyncio.Task] = set()
        jobs.add_listener(self._on_job)

    def _on_job(self, job, event: str) -> None:
        if self.jobs.applying_remote:
            return  # another instance dispatched it: that one notifies
        if event == "finished" and job.webhook:
            body = job.status_dict(self.jobs.worker_name(job), None)
            task = asyncio.ensure_future(self._send(job.webhook, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, url: str, body: dict) -> None:
        payload = json.dumps({"event": "job_finished", "job": body}).encode()
        for attempt in range(ATTEMPTS):
            request = HTTPRequest(url, method="POST", body=payload, request_timeout=TIMEOUT,
                                  headers={"Content-Type": "application/json"})
            try:
                response = await AsyncHTTPClient().fetch(request, raise_error=False)
                if 200 <= response.code < 300:
                    return
                reason = f"status {response.code}"
            except Exception as exc:  # any transport problem: retry, then give up with a log line
                reason = str(exc)
            logger.warning("webhook for %s failed (%s), attempt %d", body["prompt_id"], reason, attempt + 1)
            await asyncio.sleep(0.5 * 2 ** attempt)

    async def stop(self) -> None:
        """Give pending notifications a moment to finish."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
