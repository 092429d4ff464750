"""What crosses between instances over the bus: local changes out, the others' changes in.

Out: a job this instance accepted (its whole row, once), every later change of a job the dispatcher
makes (without workflow and history; progress at most four times a second per job), worker changes
(configuration: "read the store"; live state: the dispatcher's view), events for clients connected to
other instances, and notices (uploads, settings, a takeover). In: the same from the others, applied to
this instance's replica and delivered to its own client sockets.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..jobs.replica import update_of
from ..workers.replication import adopt_object_info, apply_status, status_of

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between progress messages of one job
CONFIG_EVENTS = ("added", "updated", "reconnect", "deleted")


class ClusterLinks:
    """Publishes this instance's changes on the bus and applies the other instances' messages."""

    def __init__(self, gateway, node):
        self.gw = gateway
        self.node = node
        self._last_progress: dict[str, float] = {}
        self._fetching: dict[str, list[tuple[dict, str | None]]] = {}  # prompt id -> updates waiting for its row
        self.dirty_workers: set[int] = set()  # live states the store has not seen yet (dispatcher)

    @property
    def bus(self):
        return self.node.bus

    def attach(self) -> None:
        """Listen to local changes (jobs, workers, client events) to pass them on."""
        gw = self.gw
        gw.jobs.add_listener(self._on_job)
        gw.registry.add_listener(self._on_worker)
        gw.hub.remote = self._relay
        gw.uploads.on_saved = lambda: self.notice("uploads")

    def handlers(self) -> dict:
        """The bus handlers by channel."""
        return {"jobs": self._job_message, "relay": self._relay_message, "workers": self._worker_message,
                "control": self._control_message}

    def _up(self) -> bool:
        return self.bus is not None and self.bus.up

    def notice(self, what: str, **extra) -> None:
        """Tell the other instances to re-read something from the store (workers, uploads, settings)."""
        if self._up():
            self.bus.publish("control", {"e": what, **extra})

    def announce_takeover(self, epoch: int) -> None:
        """This instance now dispatches."""
        self.notice("takeover", epoch=epoch, name=self.node.name)

    # ----- out ------------------------------------------------------------------------------------
    def _on_job(self, job, event: str) -> None:
        jobs = self.gw.jobs
        if jobs.applying_remote or not self._up():
            return
        if event == "finished":
            self._last_progress.pop(job.prompt_id, None)
        if not job.announced:
            job.announced = True
            row = job.row()
            row.pop("history", None)
            row["body"] = job.body  # a packed body is JSON text for the store; peers read it as an object
            self.bus.publish("jobs", {"e": event, "row": row})
            return
        if not jobs.dispatching:
            return  # only the dispatcher's view of a job's progress counts
        if event == "progress":
            now = time.monotonic()
            if now - self._last_progress.get(job.prompt_id, 0.0) < PROGRESS_INTERVAL:
                return
            self._last_progress[job.prompt_id] = now
        message = {"e": event, "u": update_of(job), "t": time.time()}
        if event == "finished":
            self._publish_when_written(message)
            return
        self.bus.publish("jobs", message)

    def _publish_when_written(self, message: dict) -> None:
        """Tell the others a job ended once its last write (with its history) is in the store: an instance
        that hears it reads the history from there (wait mode, /history), so it must not be early."""
        try:
            written = self.gw.store.after_writes()
        except Exception:  # the store is closing: tell at once
            self.bus.publish("jobs", message)
            return

        def publish(done) -> None:
            if not done.cancelled():
                done.exception()  # the store's trouble is logged where the write failed
            if self._up():
                self.bus.publish("jobs", message)
        written.add_done_callback(publish)

    def _on_worker(self, worker, event: str) -> None:
        registry = self.gw.registry
        if registry.applying_remote:
            return
        if event in CONFIG_EVENTS:
            self.notice("workers")
            return
        if not self.gw.jobs.dispatching:
            return
        self.dirty_workers.add(worker.id)
        if self._up():
            self.bus.publish("workers", {"id": worker.id, "s": status_of(worker), "h": worker.object_info_hash})

    def _relay(self, kind: str, sid: str | None, metadata: dict, payload: bytes) -> None:
        if self.node.peers and self._up():
            self.bus.publish("relay", {"k": kind, "c": sid, "m": metadata}, payload)

    # ----- in -------------------------------------------------------------------------------------
    def _job_message(self, header: dict, _payload: bytes) -> None:
        jobs = self.gw.jobs
        event = header.get("e")
        row = header.get("row")
        if isinstance(row, dict) and isinstance(row.get("prompt_id"), str):
            jobs.adopt(row)
            return
        update = header.get("u")
        if not isinstance(update, dict) or jobs.dispatching:
            return  # this instance is the one that decides (a message of a former dispatcher is stale)
        job = jobs.get(update.get("prompt_id"))
        if job is None:
            self._fetch_then_apply(update, event)
            return
        job.synced_at = max(getattr(job, "synced_at", 0.0), header.get("t") or 0.0)
        jobs.apply_update(update, event)

    def _fetch_then_apply(self, update: dict, event: str | None) -> None:
        """An update of a job this instance has not seen: read its row once, then apply what came."""
        prompt_id = update.get("prompt_id")
        if not isinstance(prompt_id, str):
            return
        waiting = self._fetching.get(prompt_id)
        if waiting is not None:
            waiting.append((update, event))
            return
        self._fetching[prompt_id] = [(update, event)]

        async def fetch() -> None:
            try:
                rows = await self.gw.store.get_jobs([prompt_id])
            except Exception as exc:
                logger.debug("could not read job %s: %s", prompt_id, exc)
                rows = []
            pending = self._fetching.pop(prompt_id, [])
            if not rows or self.gw.jobs.dispatching:
                return
            self.gw.jobs.adopt(rows[0])
            for item, kind in pending:
                self.gw.jobs.apply_update(item, kind)
        asyncio.ensure_future(fetch())

    def _relay_message(self, header: dict, payload: bytes) -> None:
        metadata = header.get("m") if isinstance(header.get("m"), dict) else {}
        sid = header.get("c") if isinstance(header.get("c"), str) else None
        self.gw.hub.deliver_remote(str(header.get("k")), sid, metadata, payload)

    def _worker_message(self, header: dict, _payload: bytes) -> None:
        if self.gw.jobs.dispatching:
            return
        worker = self.gw.registry.get(header.get("id")) if isinstance(header.get("id"), int) else None
        status = header.get("s")
        if worker is None or not isinstance(status, dict):
            return
        self.apply_worker(worker, status, header.get("h"))

    def apply_worker(self, worker, status: dict, digest: str | None) -> None:
        """Take over the dispatcher's view of a worker (and its node list, when it changed)."""
        self.gw.registry.notify_remote(worker, apply_status(worker, status))
        if digest and digest != worker.object_info_hash:
            asyncio.ensure_future(self._load_node_list(worker, digest))

    async def _load_node_list(self, worker, digest: str) -> None:
        try:
            if await adopt_object_info(self.gw.store, worker, digest):
                self.gw.registry.notify_remote(worker, "capabilities")
        except Exception as exc:
            logger.debug("could not load the node list of %s: %s", worker.name, exc)

    def _control_message(self, header: dict, _payload: bytes) -> None:
        what = header.get("e")
        if what == "workers":
            self.node.sync.soon("workers")
        elif what == "uploads":
            self.node.sync.soon("uploads")
        elif what == "settings":
            self.node.sync.soon("settings")
        elif what == "takeover":
            self.node.sync.soon("lease")
        elif what == "hello":  # a new instance: count it at once (events for its clients go out from now)
            asyncio.ensure_future(self.node.refresh_instances())
