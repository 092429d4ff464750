"""Periodic worker health checks: /system_stats and /queue mark each worker online or offline."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from ..background import BackgroundLoop
from ..errors import GatewayError
from ..scheduling.capabilities import Capabilities
from .client import WorkerClient
from .registry import Worker, WorkerRegistry
from .replication import remember_object_info

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
CHECK_GRANULARITY = 0.2  # seconds: checks due within this are started together


def next_slot(worker_id: int, now: float, interval: float) -> float:
    """The next time after `now` at which this worker's check is due: its own phase of the interval."""
    phase = (worker_id * 0.618033988749895 % 1.0) * interval  # golden ratio: ids spread evenly
    return phase + interval * (((now - phase) // interval) + 1)


@dataclass
class Probe:
    """What one check of a worker found."""

    ok: bool
    started: float
    latency_ms: float | None = None
    system_stats: dict | None = None
    queue: dict | None = None
    error: str | None = None

    def report(self) -> dict:
        """A plain summary for the 'test connection' button."""
        out = {"ok": self.ok, "latency_ms": self.latency_ms, "error": self.error}
        if self.system_stats:
            out["system"] = self.system_stats.get("system", {})
            out["devices"] = self.system_stats.get("devices", [])
        if self.queue is not None:
            out["queue_running"] = len(self.queue.get("queue_running", []))
            out["queue_pending"] = len(self.queue.get("queue_pending", []))
        return out


async def probe(client: WorkerClient, timeout: float) -> Probe:
    """Ask a worker for /system_stats and /queue at once."""
    started = time.time()
    t0 = time.perf_counter()
    try:
        stats, queue = await asyncio.gather(client.get_json("/system_stats", timeout=timeout),
                                            client.get_json("/queue", timeout=timeout))
    except GatewayError as exc:
        return Probe(False, started, error=exc.message)
    if not isinstance(stats, dict) or not isinstance(queue, dict) \
            or not isinstance(queue.get("queue_running"), list) or not isinstance(queue.get("queue_pending"), list):
        return Probe(False, started, error="worker answered JSON that is not ComfyUI's /system_stats and /queue")
    return Probe(True, started, (time.perf_counter() - t0) * 1000, stats, queue)


class HealthChecker(BackgroundLoop):
    """Checks every worker every `interval` seconds and reports to the registry and the jobs service."""

    def __init__(self, registry: WorkerRegistry, interval: Callable[[], float], offline_after: Callable[[], int],
                 timeout: Callable[[], float],
                 on_queue: Callable[[Worker, dict, float], Awaitable[None]],
                 on_lost: Callable[[Worker], Awaitable[None]]):
        self._registry = registry
        self._interval = interval
        self._offline_after = offline_after
        self._timeout = timeout
        self._on_queue = on_queue
        self._on_lost = on_lost
        self._running: set[int] = set()
        self._wake = asyncio.Event()
        self.store = None  # set by the app: where node lists are kept for other instances

    def check_soon(self) -> None:
        """Run a round now instead of waiting for the interval (e.g. after a worker was added)."""
        self._wake.set()

    async def _loop(self) -> None:
        """Check each worker once per interval, spread over the interval by a phase of its own.

        Checking every worker at the same instant sent hundreds of requests at once and handled their
        answers in one burst, which stalled every other request of the gateway for that moment; with a
        phase per worker the same work comes as a steady trickle. check_soon() checks all at once.
        """
        due: dict[int, float] = {}
        while True:
            interval = self._interval()
            now = time.monotonic()
            everyone = self._wake.is_set()
            self._wake.clear()
            workers = self._registry.all()
            for worker in workers:
                if everyone or worker.id not in due:
                    due[worker.id] = now  # new, or asked for: at once
                if due[worker.id] <= now:
                    if worker.id not in self._running:
                        asyncio.ensure_future(self.check(worker))
                    due[worker.id] = next_slot(worker.id, now, interval)
            for gone in set(due) - {w.id for w in workers}:
                del due[gone]
            wait = max(CHECK_GRANULARITY, min(due.values(), default=now + interval) - now)
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def check(self, worker: Worker) -> Probe:
        """Check one worker now and update its state."""
        self._running.add(worker.id)
        try:
            return await self._check(worker)
        except Exception:  # a bug or a strange answer must not silently stop checking this worker
            logger.exception("health check of %s failed", worker.name)
            return Probe(False, time.time(), error="internal error while checking; see the gateway log")
        finally:
            self._running.discard(worker.id)

    async def _check(self, worker: Worker) -> Probe:
        result = await probe(worker.client, min(PROBE_TIMEOUT, self._timeout()))
        if self._registry.get(worker.id) is not worker:
            return result  # deleted or replaced meanwhile
        if result.ok:
            await self._mark_online(worker, result)
        else:
            await self._mark_failure(worker, result)
        return result

    async def refresh_object_info(self, worker: Worker) -> None:
        """Fetch and cache a worker's /object_info (its capabilities)."""
        try:
            info = await worker.client.get_json("/object_info", timeout=max(self._timeout(), 10.0))
        except GatewayError as exc:
            logger.warning("worker %s: cannot read /object_info: %s", worker.name, exc.message)
            return
        if not isinstance(info, dict):
            logger.warning("worker %s: /object_info is not an object of node types", worker.name)
            return
        try:
            capabilities = Capabilities.from_object_info(info)
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            logger.warning("worker %s: cannot read its /object_info: %s", worker.name, exc)
            return
        worker.object_info = info
        worker.capabilities = capabilities
        logger.info("worker %s: %d node types", worker.name, len(info))
        if self.store is not None:
            try:  # kept for other instances and restarts: jobs are checked against it while it is away
                await remember_object_info(self.store, worker, info)
            except Exception as exc:
                logger.warning("worker %s: could not store its node list: %s", worker.name, exc)
        self._registry.notify(worker, "capabilities")

    async def _mark_online(self, worker: Worker, result: Probe) -> None:
        was = worker.status
        stats = result.system_stats or {}
        worker.devices = stats.get("devices", []) or []
        worker.system = stats.get("system", {}) or {}
        worker.latency_ms = round(result.latency_ms or 0.0, 2)
        worker.last_check = worker.last_seen = time.time()
        worker.failures = 0
        worker.last_error = None
        if was != "online" or worker.object_info is None:
            await self.refresh_object_info(worker)
        worker.status = "online"
        if was != "online" or worker.online_since is None:
            worker.online_since = worker.last_seen
        await self._on_queue(worker, result.queue or {}, result.started)
        if was != "online":
            logger.info("worker %s is online (%.1f ms)", worker.name, worker.latency_ms)
            self._registry.notify(worker, "online")
        else:
            self._registry.notify(worker, "health")

    async def _mark_failure(self, worker: Worker, result: Probe) -> None:
        worker.failures += 1
        worker.last_error = result.error
        worker.last_check = time.time()
        if worker.status != "offline" and worker.failures >= self._offline_after():
            worker.status = "offline"
            worker.online_since = None
            logger.warning("worker %s is offline: %s", worker.name, result.error)
            self._registry.notify(worker, "offline")
            await self._on_lost(worker)
        else:
            self._registry.notify(worker, "health")
