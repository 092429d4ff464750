"""Wires the parts together: worker monitors feed the tracker and the client hub; changes reach listeners."""

from __future__ import annotations

import asyncio
import logging
import time

from ..workers.monitor import WorkerMonitor

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between progress updates of one job on the admin stream


class EventWiring:
    """Starts a monitor per worker and routes what they hear; owns the admin-page listeners."""

    def __init__(self, gateway):
        self.gw = gateway
        self.monitors: dict[int, WorkerMonitor] = {}
        self._admin_listeners: set = set()
        self._last_progress: dict[str, float] = {}
        self.dispatching = False  # monitors run, and worker changes move jobs, only on the dispatcher

    def attach(self) -> None:
        """Hook the listeners (once): worker and job changes reach the admin stream and the client hub."""
        self.gw.registry.add_listener(self._on_worker_change)
        self.gw.jobs.add_listener(self._on_job_change)

    def start(self, recovered_jobs: list) -> None:
        """As the dispatcher: open monitors and let the tracker settle jobs loaded from the store."""
        gw = self.gw
        self.dispatching = True
        for worker in gw.registry.all():
            self._ensure_monitor(worker)
        for job in recovered_jobs:
            if job.worker_id is not None and gw.registry.get(job.worker_id) is None:
                gw.dispatcher._requeue(job, "its worker no longer exists")
        gw.dispatcher.wake()

    async def stop(self) -> None:
        """No longer the dispatcher: close every monitor."""
        self.dispatching = False
        await asyncio.gather(*(m.stop() for m in self.monitors.values()), return_exceptions=True)
        self.monitors.clear()

    # ----- admin page event stream ---------------------------------------------------------------
    def add_admin_listener(self, callback) -> None:
        """callback(kind, payload) for worker and job changes (the admin page's live stream)."""
        self._admin_listeners.add(callback)

    def remove_admin_listener(self, callback) -> None:
        """Stop calling callback."""
        self._admin_listeners.discard(callback)

    def _emit(self, kind: str, payload: dict) -> None:
        for callback in list(self._admin_listeners):
            try:
                callback(kind, payload)
            except Exception:
                logger.exception("admin listener failed")

    # ----- monitors ---------------------------------------------------------------------------------
    def _ensure_monitor(self, worker) -> None:
        if worker.id in self.monitors:
            return
        monitor = WorkerMonitor(worker, self.gw.client_id, self._on_text, self._on_binary, self._on_connect,
                                lambda: self.gw.settings.worker_request_timeout)
        self.monitors[worker.id] = monitor
        monitor.start()

    def _drop_monitor(self, worker_id: int) -> None:
        monitor = self.monitors.pop(worker_id, None)
        if monitor:
            asyncio.ensure_future(monitor.stop())

    def _on_worker_change(self, worker, event: str) -> None:
        gw = self.gw
        if self.dispatching:
            self._react(worker, event)
        if self._admin_listeners:
            self._emit("worker", {**worker.public_dict(), "event": event})
        gw.hub.status_changed()
        gw.dispatcher.wake()

    def _react(self, worker, event: str) -> None:
        """The dispatcher's part of a worker change: monitors, checks, and the jobs on that worker."""
        gw = self.gw
        if event in ("deleted", "reconnect"):
            # Another machine may answer at this id or URL now: what the gateway knew about it is void.
            gw.uploads.forget_worker(worker.id)
            gw.cost_model.forget_worker(worker.id)
        if event == "deleted":
            self._drop_monitor(worker.id)
            gw.tracker.on_worker_removed(worker)
        elif event == "reconnect":
            self._drop_monitor(worker.id)
            self._ensure_monitor(worker)
            if not worker.enabled:
                gw.tracker.on_worker_disabled(worker)
            gw.health.check_soon()
        elif event == "added":
            self._ensure_monitor(worker)
            gw.health.check_soon()
        elif event == "updated" and not worker.enabled:
            gw.tracker.on_worker_disabled(worker)

    def _on_connect(self, worker, reconnected: bool) -> None:
        if reconnected:
            # The worker may have restarted: settle its jobs from /queue and /history, re-read its nodes,
            # and copy uploads again (its input folder may be new).
            self.gw.uploads.forget_worker(worker.id)
            asyncio.ensure_future(self.gw.health.refresh_object_info(worker))
            self.gw.health.check_soon()

    def _on_text(self, worker, event_type: str, data: dict, raw: str) -> None:
        gw = self.gw
        if event_type == "status":
            queue = (data.get("status") or {}).get("exec_info", {}).get("queue_remaining")
            if isinstance(queue, int):
                worker.queue_remaining = queue
                worker.reports += 1
                worker.sent_since_report = sum(1 for j in gw.jobs.active_on(worker.id) if j.submitted_at is None)
                gw.dispatcher.wake()
            gw.hub.status_changed()
            return
        job = gw.tracker.on_event(worker, event_type, data)
        running = None
        if "prompt_id" not in data and worker.running_prompt_ids:
            running = gw.jobs.active.get(worker.running_prompt_ids[0])
        gw.hub.forward_text(event_type, raw, job if job is not None and job.worker_id == worker.id else None,
                            running)

    def _on_binary(self, worker, event_type: int, frame: bytes) -> None:
        gw = self.gw
        running = gw.jobs.active.get(worker.running_prompt_ids[0]) if worker.running_prompt_ids else None
        gw.hub.forward_binary(event_type, frame, gw.jobs.get, running)

    def _on_job_change(self, job, event: str) -> None:
        if event in ("queued", "finished", "submitted"):
            self.gw.hub.status_changed()
        if event == "finished":
            self._last_progress.pop(job.prompt_id, None)
        if not self._admin_listeners:
            return
        now = time.monotonic()
        if event == "progress":
            # The admin page needs a few progress updates a second, not one per sampler step.
            if now - self._last_progress.get(job.prompt_id, 0.0) < PROGRESS_INTERVAL:
                return
            self._last_progress[job.prompt_id] = now
        self._emit("job", {"event": event, "job": job.status_dict(self.gw.jobs.worker_name(job), None)})

    def emit_summary(self) -> None:
        """Push the cluster summary (e.g. after dispatching was paused or resumed)."""
        if self._admin_listeners:
            self._emit("summary", self.gw.summary())

    def emit_cluster(self, payload: dict) -> None:
        """Push a cluster event (another instance took the dispatcher lease) to the admin page."""
        if self._admin_listeners:
            self._emit("cluster", payload)
