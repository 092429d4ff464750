"""Optional Redis: publishes each worker's load (with a TTL) and every job event for other instances/tools.

Keys (under the prefix, default "comfyui-gateway:"): ``worker:<id>`` -> the worker's public dict, kept for
QUEUE_CACHE_TTL_SECONDS; channel ``events`` -> {"kind": "job"|"worker", ...}. Redis being down never
affects the gateway (RedisCache degrades to no-ops).
"""

from __future__ import annotations

import asyncio
import logging

from ..store.redis_cache import RedisCache

logger = logging.getLogger(__name__)


class SharedState:
    """Mirrors worker load and job events into Redis."""

    def __init__(self, url: str, prefix: str, ttl):
        self.cache = RedisCache(url, prefix=prefix)
        self._ttl = ttl
        self._tasks: set[asyncio.Task] = set()

    async def start(self, registry, jobs) -> None:
        """Connect and start mirroring."""
        if await self.cache.connect():
            logger.info("sharing worker load and job events on Redis %s", self.cache.safe_url)
        registry.add_listener(self._on_worker)
        jobs.add_listener(self._on_job)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_worker(self, worker, event: str) -> None:
        data = worker.public_dict()
        if event == "deleted":
            self._spawn(self.cache.delete(f"worker:{worker.id}"))
        else:
            self._spawn(self.cache.put_json(f"worker:{worker.id}", data, ttl=max(1, int(self._ttl()))))
        self._spawn(self.cache.publish("events", {"kind": "worker", "event": event, "worker": data}))

    def _on_job(self, job, event: str) -> None:
        if event == "progress":
            return  # too chatty for a shared channel; the state changes are what other instances need
        self._spawn(self.cache.publish("events", {"kind": "job", "event": event, "prompt_id": job.prompt_id,
                                                  "state": job.state, "worker_id": job.worker_id}))

    async def stop(self) -> None:
        """Flush pending writes and disconnect."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        await self.cache.close()
