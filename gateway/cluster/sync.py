"""Reading the store for what other instances changed: the fallback of the bus, and its safety net.

Every ``cluster_poll_interval`` seconds while Redis is away (five times as long while it is up, to catch
a message pub/sub lost), an instance reads what changed since its last look:

- every instance: the workers' configuration, uploads, runtime settings;
- the dispatcher: jobs other instances accepted (waiting rows it does not know yet), and it writes the
  workers' live state it saw;
- the others: job changes (without workflow and history) and the workers' live state. With Redis away,
  a client connected here still learns when its job starts and ends: those events are made from the
  store's state (``execution_start``, then ``execution_success`` / ``execution_error`` /
  ``execution_interrupted`` and ``executing`` with node null), one poll interval late.

Change reads use the writers' own timestamps minus SLACK_SECONDS, so clocks that disagree a little
lose nothing; a row already seen is recognised by its timestamp.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from ..background import BackgroundLoop
from ..jobs.model import ACTIVE_STATES, FAILED
from ..workers.replication import status_of

logger = logging.getLogger(__name__)

SLACK_SECONDS = 2.0
SAFETY_FACTOR = 5  # the poll interval while Redis is up, in multiples of cluster_poll_interval
PARTS = ("workers", "uploads", "settings", "lease", "jobs", "worker_status")


class StoreSync(BackgroundLoop):
    """The store-polling loop of one instance (see the module docstring)."""

    def __init__(self, gateway, node):
        self.gw = gateway
        self.node = node
        self._wake = asyncio.Event()
        self._asked: set[str] = set()
        self._jobs_since = time.time() - SLACK_SECONDS
        self._queued_since = time.time() - 60.0
        self._status_since = 0.0
        self._settings_seen: str | None = None
        self.last_sync: float | None = None

    def soon(self, part: str) -> None:
        """Read one part now (a notice from another instance)."""
        self._asked.add(part)
        self._wake.set()

    def resync_soon(self) -> None:
        """Read everything now (Redis came back: messages may have been lost meanwhile)."""
        self._asked.update(PARTS)
        self._wake.set()

    def interval(self) -> float:
        """Seconds between two reads of everything."""
        base = self.gw.settings.cluster_poll_interval
        return base * SAFETY_FACTOR if self.node.bus is not None and self.node.bus.up else base

    async def _loop(self) -> None:
        next_full = 0.0
        while True:
            timeout = max(0.0, next_full - time.monotonic())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if time.monotonic() >= next_full:
                parts = set(PARTS)
                next_full = time.monotonic() + self.interval()
            else:
                parts, self._asked = self._asked, set()
            try:
                await self.run(parts)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: the next round tries again
                logger.debug("store sync failed: %s: %s", type(exc).__name__, exc)

    async def run(self, parts: set[str]) -> None:
        """Read (and, as dispatcher, write) the given parts once."""
        self._asked -= parts
        dispatching = self.gw.jobs.dispatching
        if "workers" in parts:
            await self.workers()
        if "uploads" in parts:
            await self.uploads()
        if "settings" in parts:
            await self.settings()
        if "lease" in parts:
            self.node.note_lease(await self.gw.store.read_lease())
        if dispatching:
            await self.write_worker_status()
            if "jobs" in parts:
                await self.new_jobs()
        else:
            if "worker_status" in parts:
                await self.worker_status()
            if "jobs" in parts:
                await self.job_changes()
        self.last_sync = time.time()

    # ----- every instance ---------------------------------------------------------------------------
    async def workers(self) -> None:
        """The workers' configuration as stored."""
        self.gw.registry.sync_rows(await self.gw.store.list_workers())

    async def uploads(self) -> None:
        """Uploads other instances accepted."""
        await self.gw.uploads.refresh()

    async def settings(self) -> None:
        """Runtime settings and the dispatch switch, when another instance changed them."""
        stored = await self.gw.store.get_settings()
        key = json.dumps([stored.get("runtime"), stored.get("dispatch_paused")], sort_keys=True, default=str)
        if key != self._settings_seen:
            self._settings_seen = key
            self.gw.apply_stored_settings(stored)

    # ----- the dispatcher ---------------------------------------------------------------------------
    async def new_jobs(self) -> None:
        """Waiting jobs other instances accepted that this one has not heard of."""
        rows = await self.gw.store.queued_since(self._queued_since - SLACK_SECONDS)
        jobs = self.gw.jobs
        for row in rows:
            self._queued_since = max(self._queued_since, row["created_at"])
            if jobs.get(row["prompt_id"]) is None:
                jobs.adopt(row)

    async def write_worker_status(self) -> None:
        """The live state of workers that changed since the last write."""
        links = self.node.links
        dirty, links.dirty_workers = links.dirty_workers, set()
        rows = []
        now = time.time()
        for worker_id in dirty:
            worker = self.gw.registry.get(worker_id)
            if worker is not None:
                rows.append({"worker_id": worker.id, "status": status_of(worker),
                             "object_info_hash": worker.object_info_hash, "updated_at": now})
        if rows:
            try:
                await self.gw.store.put_worker_status(rows)
            except Exception:
                links.dirty_workers |= dirty  # again next round
                raise

    # ----- the others -------------------------------------------------------------------------------
    async def worker_status(self) -> None:
        """The dispatcher's view of the workers."""
        rows = await self.gw.store.worker_status_since(self._status_since - SLACK_SECONDS)
        for row in rows:
            self._status_since = max(self._status_since, row["updated_at"])
            worker = self.gw.registry.get(row["worker_id"])
            if worker is not None and (worker.status_synced_at or 0.0) < row["updated_at"]:
                worker.status_synced_at = row["updated_at"]
                self.node.links.apply_worker(worker, row["status"] or {}, row.get("object_info_hash"))

    async def job_changes(self) -> None:
        """Job changes the dispatcher wrote, applied to the replica."""
        store, jobs = self.gw.store, self.gw.jobs
        rows = await store.changed_jobs(self._jobs_since - SLACK_SECONDS)
        unknown = []
        bus_down = not (self.node.bus is not None and self.node.bus.up)
        for row in rows:
            self._jobs_since = max(self._jobs_since, row["updated_at"])
            job = jobs.get(row["prompt_id"])
            if job is None:
                if row["state"] in ACTIVE_STATES or (bus_down and row["client_id"] is not None
                                                     and self.gw.hub.get(row["client_id"]) is not None):
                    unknown.append(row["prompt_id"])
                continue
            if row["updated_at"] <= job.synced_at:
                continue  # already applied (this row, or a newer message)
            before = job.state
            job.synced_at = row["updated_at"]
            jobs.apply_update(row)
            if bus_down:
                self._tell_client(job, before)
        if unknown:
            for row in await store.get_jobs(unknown):
                if jobs.get(row["prompt_id"]) is None and not jobs.dispatching:
                    job = jobs.adopt(row)
                    job.synced_at = row["updated_at"]
                    if bus_down:
                        self._tell_client(job, "queued")  # it may have started, even ended, meanwhile

    def _tell_client(self, job, before: str) -> None:
        """With Redis away, the job's own client hears its start and end from the store's state."""
        if job.client_id is None or job.state == before:
            return
        hub = self.gw.hub
        base = {"prompt_id": job.prompt_id, "timestamp": int(time.time() * 1000)}
        if job.state == "running" or (job.state in ("done", FAILED) and before in ("queued", "submitted")):
            hub.send_text(job.client_id, json.dumps({"type": "execution_start", "data": base}), remote=False)
        if job.state == "done":
            hub.send_text(job.client_id, json.dumps({"type": "execution_success", "data": base}), remote=False)
        elif job.state == FAILED:
            error = job.error or {}
            kind = "execution_interrupted" if error.get("type") in ("interrupted", "cancelled") \
                else "execution_error"
            data = dict(base)
            if kind == "execution_error":
                data.update({key: error.get(key) for key in ("node_id", "node_type", "exception_message",
                                                             "exception_type", "traceback", "executed")
                             if key in error})
            hub.send_text(job.client_id, json.dumps({"type": kind, "data": data}), remote=False)
        if job.state in ("done", FAILED):
            hub.send_text(job.client_id, json.dumps({"type": "executing", "data": {
                "node": None, "display_node": None, "prompt_id": job.prompt_id}}), remote=False)
