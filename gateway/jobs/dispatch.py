"""Dispatcher: sends queued jobs to workers as the scheduler decides, and brings them back when workers fail."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from ..background import BackgroundLoop
from ..errors import GatewayError, WorkerBadAnswer, WorkerTimeout
from ..files.outputs import tag_output_prefixes
from ..scheduling.scheduler import WorkerState, remaining_seconds
from ..scheduling.validation import validate_prompt
from ..store.errors import FencedError
from ..workers.connections import SendRefused
from .model import FAILED, QUEUED, RUNNING, SUBMITTED, Job

logger = logging.getLogger(__name__)

COOLDOWN_SECONDS = 2.0  # a worker that just refused a submission gets no new job for this long


class Dispatcher(BackgroundLoop):
    """Moves jobs from the gateway queue to workers; the only place that decides retries and requeues."""

    def __init__(self, jobs, registry, scheduler, cost_model, settings: Callable[[], Any], client_id: str,
                 outputs, uploads):
        self.jobs = jobs
        self.registry = registry
        self.scheduler = scheduler
        self.cost_model = cost_model
        self._settings = settings
        self.client_id = client_id
        self.outputs = outputs
        self.uploads = uploads
        self.paused = False
        self.cost_epoch = 0  # bumped on every completion, so cached job views re-read cost estimates
        self._wake = asyncio.Event()
        self._cooldown: dict[int, float] = {}
        self.health = None  # set by the app, to ask for a prompt check of a worker
        # Asked right before each job goes out: this instance still holds the dispatcher lease.
        self.may_send: Callable[[], bool] = lambda: True

    # ----- control (start/stop from BackgroundLoop; queued jobs stay on disk) -------------------
    def wake(self) -> None:
        """Ask for a scheduling round soon."""
        self._wake.set()

    def pause(self) -> None:
        """Stop sending jobs to workers; new jobs are still accepted and queued."""
        self.paused = True
        logger.info("dispatching paused")

    def resume(self) -> None:
        """Send jobs again."""
        self.paused = False
        logger.info("dispatching resumed")
        self.wake()

    # ----- scheduler view -------------------------------------------------------------------------
    def worker_state(self, worker, now: float | None = None) -> WorkerState:
        """The worker as the scheduler sees it."""
        now = now or time.time()
        state = worker.state
        if state == "online" and self._cooldown.get(worker.id, 0) > now:
            state = "offline"
        in_flight = [job for job in self.jobs.active_on(worker.id) if not job.ended_on_worker]
        speed = self.cost_model.worker_speed(worker.id) or 1.0
        cost_of = self._cost_of
        running = next((j for j in in_flight if j.state == RUNNING), None)
        waiting = [cost_of(j) for j in in_flight if j is not running]
        busy = remaining_seconds(now, running.started_at if running else None,
                                 cost_of(running) if running else 0.0, speed, waiting)
        return WorkerState(id=worker.id, name=worker.name, state=state, capacity=max(1, worker.max_queue),
                           weight=worker.weight, reported_queue=worker.queue_remaining,
                           sent_since_report=worker.sent_since_report, in_flight=len(in_flight),
                           speed=speed, busy_remaining_seconds=busy,
                           capabilities=worker.capabilities)

    def has_room(self, worker, now: float | None = None) -> bool:
        """``scheduler.has_room(worker_state(worker))`` without building the state (no costs, no speed)."""
        capacity = max(1, worker.max_queue)
        if worker.queue_remaining + worker.sent_since_report >= capacity:
            return False  # the common case with a deep queue, and the cheapest test: first
        if worker.state != "online" or self._cooldown.get(worker.id, 0) > (now or time.time()):
            return False
        return sum(1 for job in self.jobs.active_on(worker.id) if not job.ended_on_worker) < capacity

    def _cost_of(self, job: Job) -> float:
        """Expected run seconds of a job at speed 1, cached until the cost model learns something new."""
        cached = job.cost_cache
        if cached is None or cached[0] != self.cost_epoch:
            cost = self.cost_model.estimate_cost(job.signature) or self.cost_model.default_cost()
            cached = job.cost_cache = (self.cost_epoch, cost)
        return cached[1]

    def _plan(self) -> list:
        jobs = self.jobs
        if self.paused or not jobs.waiting_count or not jobs.dispatching or jobs.loading or not self.may_send():
            return []
        registered = self.registry.snapshot()
        # Every submission asks for a plan: with hundreds of full workers, a cheap look at each answers
        # "nothing can move" without building their scheduler views.
        now = time.time()
        if not any(self.has_room(w, now) for w in registered):
            return []
        workers = [self.worker_state(w, now) for w in registered]
        if not any(self.scheduler.has_room(w) for w in workers):
            return []
        # The queue is kept in dispatch order; the scheduler reads it only as far as there is room.
        queued = (jobs.queued_view(j) for j in jobs.waiting_in_order())
        return self.scheduler.plan(now, workers, queued, default_cost=self.cost_model.default_cost(), ordered=True)

    def _claim(self, job: Job, worker) -> None:
        # Synchronously, before any await, so a concurrent round sees the slot as taken.
        self.jobs.place(job, SUBMITTED, worker.id)
        job.submitted_at = None
        job.lost_since = None
        job.claimed_at_report = worker.reports
        worker.sent_since_report += 1

    # ----- the loop -------------------------------------------------------------------------------
    async def _loop(self) -> None:
        next_expiry = 0.0
        while True:
            timeout = self._settings().queue_timeout
            if timeout > 0:
                try:  # wake at least now and then to fail jobs that waited too long
                    await asyncio.wait_for(self._wake.wait(), max(0.05, next_expiry - time.monotonic()))
                except asyncio.TimeoutError:
                    pass
            else:
                await self._wake.wait()
            self._wake.clear()
            try:
                if timeout > 0 and time.monotonic() >= next_expiry:
                    self.expire_waiting(timeout, time.time())
                    next_expiry = time.monotonic() + min(5.0, max(0.2, timeout / 10))
                self.dispatch_round()
            except Exception:
                logger.exception("scheduling round failed")
            await asyncio.sleep(0)

    def expire_waiting(self, timeout: float, now: float) -> int:
        """Fail jobs that waited in the gateway longer than queue_timeout seconds; how many."""
        expired = [job for job in self.jobs.waiting_in_order() if now - job.created_at > timeout]
        for job in expired:
            self.jobs.fail_queued(job, "queue_timeout", f"no worker took the job within queue_timeout "
                                  f"({timeout:g} s); it waited {now - job.created_at:.0f} s")
        return len(expired)

    def dispatch_round(self) -> None:
        """Run the scheduler once and start sending what it assigned."""
        for assignment in self._plan():
            job = self.jobs.active.get(assignment.prompt_id)
            worker = self.registry.get(assignment.worker_id)
            if job is None or worker is None or job.state != QUEUED:
                continue
            self._claim(job, worker)
            asyncio.ensure_future(self._send_background(job, worker))

    def claim_now(self, job: Job):
        """Fast path: the worker the new job can go to right now (claimed), or None."""
        assignments = self._plan()  # the new job is already in the gateway queue
        chosen = None
        for assignment in assignments:
            if assignment.prompt_id == job.prompt_id:
                chosen = self.registry.get(assignment.worker_id)
        if chosen is not None:
            self._claim(job, chosen)
        if len(assignments) > (1 if chosen else 0):
            self.wake()
        return chosen

    async def submit_now(self, job: Job, worker, object_info: dict | None) -> tuple[int, dict]:
        """Fast path: store the job (its row already says "submitted to this worker"), forward it, and
        answer with the worker's own answer.

        Writing first and forwarding second measured faster than both at once (bench/overhead.py):
        with the store thread writing while the loop sends, the two compete for the GIL and the
        CPU in the middle of the request, and the forward took longer than the write saved.
        """
        epoch = self.jobs.fence
        try:
            await self.jobs.insert(job, fence=epoch)
        except FencedError:
            # The lease ended between the claim and the write: accept the job as waiting; whichever
            # instance dispatches now sends it.
            self.jobs.release_claim(job)
            self.jobs.place(job, QUEUED, None)
            if self.jobs.on_fenced and epoch is not None:
                self.jobs.on_fenced(epoch)
            return await self.jobs.accept_queued(job, object_info)
        except Exception as exc:
            raise self.jobs.not_stored(job, exc) from None
        try:
            status, body = await self._send(job, worker, reject=self._unaccept)
        except Exception:
            logger.exception("sending job %s failed", job.prompt_id)
            self._requeue(job, "internal error while sending")
            status, body = 503, {}
        if status == 200:
            answer = self.jobs.answer(job, body.get("node_errors") if isinstance(body, dict) else {})
            return 200, answer
        if status == 400:
            return 400, body
        # The worker could not take it: the job is back in the gateway queue; check it as a queued job.
        if object_info:
            result = validate_prompt(job.prompt, object_info, self.uploads.known_names())
            if not result.ok:
                self.jobs.finish(job, FAILED, {"type": "validation", "message": "the workflow is invalid",
                                               "details": result.error_body})
                return 400, result.error_body
        return 200, self.jobs.answer(job)

    async def _send_background(self, job: Job, worker) -> None:
        try:
            await self.jobs.save(job, "state", "worker_id", "submitted_at")  # the intent, under the lease
            await self._send(job, worker)
        except FencedError:
            logger.info("job %s not sent: this instance no longer dispatches", job.prompt_id)
        except Exception:
            logger.exception("sending job %s failed", job.prompt_id)
            if job.state == SUBMITTED and job.submitted_at is None and job.worker_id == worker.id:
                self._worker_refused(worker, "internal error while sending")
                self._requeue(job, "internal error while sending")

    def _unaccept(self, job: Job, worker, body: Any) -> None:
        """The worker rejected a job whose client is still waiting for the answer: the client gets the
        worker's 400 and the job was never accepted, so it leaves memory and the store (no failed job
        counts in the statistics for a request that only got an error, as in ComfyUI)."""
        logger.info("job %s rejected by %s: not accepted", job.prompt_id, worker.name)
        self.jobs.forget(job)
        delete = self.jobs.store.delete_job(job.prompt_id, self.jobs.fence)
        asyncio.ensure_future(delete).add_done_callback(
            lambda done: done.cancelled() or not done.exception()
            or logger.warning("rejected job %s not deleted: %s", job.prompt_id, done.exception()))

    def _fail_rejected(self, job: Job, worker, body: Any) -> None:
        """The worker rejected a job already accepted (sent in the background): it fails."""
        self.jobs.finish(job, FAILED, {"type": "validation", "message": "the worker rejected the workflow",
                                       "details": body})

    async def _send(self, job: Job, worker, reject=None) -> tuple[int, Any]:
        """POST the job to its worker; on transport failure the job goes back to the queue.

        ``reject(job, worker, body)``: what a 400 of the worker does to the job (default: it fails).

        The job may change while the request travels (cancelled, its worker declared lost, already
        started by the worker's own events): every outcome is applied only while this send still owns
        the job, and a worker that accepted a job it no longer owns is told to drop it.
        """
        def owned() -> bool:
            return job.active and job.worker_id == worker.id and job.state == SUBMITTED

        if not owned():
            return 409, {}
        try:
            await self.uploads.ensure_on_worker(job, worker)
            payload = dict(job.body)
            payload.update({"client_id": self.client_id, "prompt_id": job.prompt_id})
            prompt = job.prompt
            if self._settings().unique_output_names:
                prompt = tag_output_prefixes(prompt, worker.id)
            payload["prompt"] = self.uploads.for_worker(prompt)
            response = await worker.client.request("POST", "/prompt", json_body=payload, guard=self.may_send)
        except SendRefused:
            # The lease lapsed on the way: nothing went out. The job's row still says where it was meant
            # to go; the next dispatcher finds it missing on that worker and sends it again.
            logger.warning("job %s not sent to %s: the dispatcher lease lapsed", job.prompt_id, worker.name)
            return 503, {"error": {"type": "no_dispatcher", "message": "the dispatcher lease lapsed"}}
        except WorkerTimeout as exc:
            # The worker may have queued it and be slow to answer: let its next /queue decide.
            self._worker_refused(worker, exc.message)
            if owned():
                job.submitted_at = time.time()
                self.jobs.save(job, "submitted_at")
            return 503, {"error": exc.to_json()["error"]}
        except GatewayError as exc:
            self._worker_refused(worker, exc.message)
            if owned():
                self._requeue(job, exc.message)
            return 503, {"error": exc.to_json()["error"]}
        if response.status in (200, 409):
            if job.active and job.worker_id == worker.id:
                if job.submitted_at is None and worker.reports != job.claimed_at_report \
                        and worker.sent_since_report > 0:
                    # A queue report came in while the job travelled: the worker reports every queue
                    # change, so that report (or one right behind it) counts this job already, and it
                    # counted it as "sent since" too. Without this the worker looks one job fuller
                    # than it is until its next report, and a job that fits waits in the gateway.
                    worker.sent_since_report -= 1
                # The worker's events may already have said "started" (even finished) before this answer.
                job.submitted_at = job.submitted_at or time.time()
                self.jobs.save(job, "state", "worker_id", "submitted_at")
                if job.state == SUBMITTED:
                    self.jobs.notify(job, "submitted")
            else:
                asyncio.ensure_future(self._take_back(worker, job.prompt_id))
            logger.info("job %s sent to %s (%.1f ms)", job.prompt_id, worker.name, response.elapsed_ms)
            try:
                body = response.json() if response.status == 200 else {}
            except WorkerBadAnswer:
                body = {}
            return 200, body if isinstance(body, dict) else {}
        if response.status == 400:
            try:
                body = response.json()
            except WorkerBadAnswer:
                body = {"error": {"type": "invalid_prompt", "message": response.body.decode(errors="replace")}}
            if owned():
                (reject or self._fail_rejected)(job, worker, body)
            return 400, body
        message = f"worker {worker.name} answered {response.status} to POST /prompt"
        self._worker_refused(worker, message)
        if owned():
            self._requeue(job, message)
        return 503, {"error": {"type": "worker_error", "message": message}}

    async def _take_back(self, worker, prompt_id: str) -> None:
        """A worker accepted a job that meanwhile was cancelled or moved: remove or stop it there."""
        try:
            await worker.client.request("POST", "/queue", json_body={"delete": [prompt_id]})
            await worker.client.request("POST", "/interrupt", json_body={"prompt_id": prompt_id})
        except GatewayError as exc:
            logger.warning("could not take job %s back from %s: %s", prompt_id, worker.name, exc.message)

    def _worker_refused(self, worker, message: str) -> None:
        logger.warning("worker %s could not take a job: %s", worker.name, message)
        worker.last_error = message
        self._cooldown[worker.id] = time.time() + COOLDOWN_SECONDS
        asyncio.get_running_loop().call_later(COOLDOWN_SECONDS + 0.05, self.wake)
        if self.health:
            self.health.check_soon()

    def _requeue(self, job: Job, reason: str) -> None:
        """Put a job that had not started back in the gateway queue."""
        if not job.active:
            return
        if job.worker_id is not None:
            worker = self.registry.get(job.worker_id)
            if worker and worker.sent_since_report > 0:
                worker.sent_since_report -= 1
        self.jobs.place(job, QUEUED, None)
        job.submitted_at = job.started_at = None
        job.ended_on_worker, job.outcome = False, None
        job.progress.node, job.progress.value, job.progress.max = None, 0.0, 0.0
        job.progress.done_nodes.clear()
        job.progress.cached_nodes.clear()
        self.jobs.save(job, "state", "worker_id", "submitted_at", "progress")
        logger.info("job %s back in the gateway queue: %s", job.prompt_id, reason)
        self.jobs.notify(job, "queued")
        self.wake()

    def cancel_waiting(self, job: Job) -> None:
        """Cancel a job that has not started: it leaves the queue as failed/cancelled."""
        if job.state == RUNNING or not job.active:
            return
        self.jobs.release_claim(job)
        self.jobs.fail_queued(job, "cancelled", "the job was cancelled before it started")

    def job_finished(self, job: Job) -> None:
        """Learn from a finished run (its time on its worker)."""
        if job.state != FAILED and job.run_seconds is not None and job.worker_id is not None:
            self.cost_model.record(job.signature, job.worker_id, job.run_seconds, time.time())
            self.cost_epoch += 1
