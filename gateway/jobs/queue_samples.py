"""The last hour of queue lengths, sampled in memory for the admin page's chart (bounded: one hour)."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from ..background import BackgroundLoop

SAMPLE_SECONDS = 10.0
KEEP = 360  # one hour of samples


class QueueSamples(BackgroundLoop):
    """Every SAMPLE_SECONDS: how many jobs wait in the gateway, wait on workers and run."""

    def __init__(self, jobs, interval: float = SAMPLE_SECONDS):
        self.jobs = jobs
        self.interval = interval
        self.samples: deque = deque(maxlen=KEEP)

    def sample(self) -> None:
        """Take one sample now."""
        counts = self.jobs.counts()
        self.samples.append((round(time.time(), 1), counts["queued"], counts["submitted"], counts["running"]))

    def as_list(self) -> list[dict]:
        """The samples, oldest first."""
        return [{"at": at, "queued": queued, "submitted": submitted, "running": running}
                for at, queued, submitted, running in self.samples]

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)
