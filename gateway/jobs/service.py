"""Jobs service: owns every job's state (queue, life cycle, status read model) and its persistence."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections import OrderedDict
from typing import Any, Callable

from ..errors import NO_WORKER_REGISTERED, ComfyError, Conflict, NotFound, StoreUnavailable, WorkerUnavailable, comfy_400
from ..scheduling.capabilities import requirements_of
from ..scheduling.cost_model import workflow_signature
from ..scheduling.scheduler import QueuedJob
from ..scheduling.validation import validate_prompt
from ..store.errors import DuplicateError, FencedError
from .events import needed_nodes, output_nodes
from .model import ACTIVE_STATES, DONE, FAILED, QUEUED, RUNNING, SUBMITTED, Job, Progress
from .prompt_request import parse_prompt_request
from .collector import LongLivedJobs
from .replica import ReplicaMixin
from .waiting_queue import WaitingQueue

logger = logging.getLogger(__name__)

RECENT_FINISHED = 2000  # finished jobs kept in memory for fast status reads
CAPABLE_CACHE_LIMIT = 1024  # distinct requirements whose capable workers are remembered


class JobService(ReplicaMixin):
    """Accepts prompts, keeps the gateway queue and the state of every job; the dispatcher moves them.

    On the instance that holds the dispatcher lease it is the one writer of job state; on the others it
    is a replica kept current from the leader's messages and the store (ReplicaMixin).
    """

    def __init__(self, store, registry, scheduler, settings: Callable[[], Any], uploads):
        self.store = store
        self.registry = registry
        self.scheduler = scheduler
        self._settings = settings
        self.uploads = uploads
        self.active: dict[str, Job] = {}
        self.recent: OrderedDict[str, Job] = OrderedDict()
        self._by_gateway_id: dict[str, str] = {}
        self._on_worker: dict[int, dict[str, Job]] = {}  # worker id -> its active jobs (hot path index)
        self._waiting = WaitingQueue()  # jobs in state queued: the gateway's own queue, in dispatch order
        # Equal requirements share one object: less memory per waiting job, and the eligibility caches
        # compare them by identity first.
        self._requirements: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._seq = 0
        self._listeners: list[Callable[[Job, str], None]] = []
        self.dispatcher = None  # set by the app: the Dispatcher that sends queued jobs to workers
        self._pending_writes: set[asyncio.Future] = set()
        # The dispatcher lease epoch while this instance sends jobs (None: another instance does, and this
        # one keeps a replica). Every write of a job's progress names it, so the store refuses the writes
        # of an instance that lost the lease; on_fenced(epoch) then tells the cluster.
        self.fence: int | None = None
        self.on_fenced: Callable[[int], None] | None = None
        self.shared_seq = False  # True on MySQL: the arrival order comes from the store's cluster counter
        self.applying_remote = False  # True while listeners hear a change another instance made
        self._finished_waiters: dict[str, list[asyncio.Future]] = {}
        self.recent_limit = RECENT_FINISHED
        self.loading = False  # True while the unfinished jobs are read from the store (nothing is planned)
        self.collector = LongLivedJobs(lambda: len(self.active))
        self._background: set[asyncio.Task] = set()  # tasks that must not be garbage collected midway
        self._node_list_cache: tuple | None = None  # (registry version, a worker's object_info)
        self._capable_cache: dict = {}  # requirements -> (registry version, worker count, capable workers)

    @property
    def dispatching(self) -> bool:
        """True while this instance holds the dispatcher lease."""
        return self.fence is not None

    # ----- listeners and persistence -------------------------------------------------------
    def add_listener(self, callback: Callable[[Job, str], None]) -> None:
        """Call callback(job, event) on every change (queued, submitted, started, progress, finished)."""
        self._listeners.append(callback)

    def notify(self, job: Job, event: str) -> None:
        """Tell listeners a job changed."""
        for callback in list(self._listeners):
            try:
                callback(job, event)
            except Exception:
                logger.exception("job listener failed on %s", event)
        if event == "finished":
            for waiter in self._finished_waiters.pop(job.prompt_id, ()):
                if not waiter.done():
                    waiter.set_result(job)

    async def wait_finished(self, prompt_id: str, timeout: float) -> Job | None:
        """The job once it has finished (done or failed), or None after `timeout` seconds."""
        job = self.get(prompt_id)
        if job is None or not job.active:
            return job
        waiter = asyncio.get_running_loop().create_future()
        self._finished_waiters.setdefault(prompt_id, []).append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            waiters = self._finished_waiters.get(prompt_id)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._finished_waiters[prompt_id]

    def save(self, job: Job, *fields: str) -> asyncio.Future:
        """Persist some fields of a job in the background, in call order (the store has one writer thread).

        Only the dispatcher writes job progress, and only under its lease epoch: after the lease is lost
        the write is refused here (FencedError), and the store refuses one that was already on its way.
        """
        row = job.row()
        values = {name: row[name] for name in (fields or row)}
        values["updated_at"] = row["updated_at"]
        epoch = self.fence
        try:
            if epoch is None:
                raise FencedError(f"not the dispatcher: change of job {job.prompt_id} not written")
            if "worker_id" in values and job.state != QUEUED:
                values["epoch"] = epoch  # the epoch that decided where the job runs
            write = self.store.update_job(job.prompt_id, values, epoch)
        except Exception as exc:  # the store is closed or the lease is gone: a waiting caller learns it
            write = asyncio.get_running_loop().create_future()
            write.set_exception(exc)
        self._pending_writes.add(write)
        write.add_done_callback(lambda done: self._write_done(done, epoch))
        return write

    def _write_done(self, write: asyncio.Future, epoch: int | None) -> None:
        self._pending_writes.discard(write)
        if write.cancelled() or not write.exception():
            return
        if isinstance(write.exception(), FencedError):
            logger.debug("job change not written: %s", write.exception())
            if epoch is not None and self.on_fenced:
                self.on_fenced(epoch)
            return
        logger.error("could not persist a job change: %s", write.exception())

    async def flush(self) -> None:
        """Wait for every background write (used on shutdown)."""
        while self._pending_writes:
            await asyncio.gather(*list(self._pending_writes), return_exceptions=True)

    # ----- look-ups ----------------------------------------------------------------------------
    def get(self, prompt_id: str) -> Job | None:
        """A job from memory (active or recently finished)."""
        return self.active.get(prompt_id) or self.recent.get(prompt_id)

    async def find(self, prompt_id: str) -> Job | None:
        """A job from memory, else from the store."""
        job = self.get(prompt_id)
        if job is None and isinstance(prompt_id, str) and len(prompt_id) <= 64:
            row = await self.store.get_job(prompt_id)
            job = Job.from_row(row) if row else None
        return job

    async def find_stored(self, prompt_id: str) -> Job | None:
        """A job as the store has it (with its history), or None."""
        if not isinstance(prompt_id, str) or len(prompt_id) > 64:
            return None
        row = await self.store.get_job(prompt_id)
        return Job.from_row(row) if row else None

    async def find_by_gateway_id(self, gateway_job_id: str) -> Job | None:
        """A job by its gateway_job_id."""
        prompt_id = self._by_gateway_id.get(gateway_job_id)
        if prompt_id:
            return await self.find(prompt_id)
        row = await self.store.get_job_by_gateway_id(gateway_job_id) if len(gateway_job_id) <= 64 else None
        return Job.from_row(row) if row else None

    def queued(self) -> list[Job]:
        """Jobs waiting in the gateway, in the order they will be dispatched."""
        return self._waiting.jobs()

    def waiting_in_order(self):
        """Iterator over the waiting jobs in dispatch order (do not change the queue while reading it)."""
        return iter(self._waiting)

    def queue_item_json(self, job: Job) -> str:
        """A job's /queue item as JSON text."""
        self.derive(job)
        return job.queue_item_json()

    @property
    def waiting_count(self) -> int:
        """How many jobs wait in the gateway."""
        return len(self._waiting)

    @property
    def queue_version(self) -> int:
        """Changes whenever a job enters, leaves or moves in the gateway queue."""
        return self._waiting.version

    def queued_view(self, job: Job):
        """The job as the scheduler sees it (cached; rebuilt when the job or the cost model changed)."""
        self.derive(job)
        epoch = (job.priority, len(job.excluded_workers), self.dispatcher.cost_epoch if self.dispatcher else 0,
                 self.registry.version)
        cached = job.scheduler_view
        if cached is not None and cached[0] == epoch:
            return cached[1]
        cost = self.dispatcher.cost_model.estimate_cost(job.signature) if self.dispatcher else None
        view = QueuedJob(prompt_id=job.prompt_id, priority=job.priority, number=job.number, seq=job.seq,
                         requirements=job.requirements, estimated_cost=cost,
                         excluded_workers=self._avoid(job))
        job.scheduler_view = (epoch, view)
        return view

    def _avoid(self, job: Job) -> frozenset:
        """Workers a retried job should avoid, as long as another online worker can run it."""
        if not job.excluded_workers:
            return frozenset()
        others = [w for w in self.registry.all() if w.state == "online" and w.id not in job.excluded_workers
                  and (w.capabilities is None or w.capabilities.missing(job.requirements).empty)]
        return frozenset(job.excluded_workers) if others else frozenset()

    def position(self, job: Job) -> int | None:
        """1-based place in line: among gateway-queued jobs, or on its worker's pending list."""
        if job.state == QUEUED:
            index = self._waiting.position(job)
            return index + 1 if index is not None else None
        if job.state == SUBMITTED and job.worker_id is not None:
            worker = self.registry.get(job.worker_id)
            pending = list(worker.pending_prompt_ids) if worker else []
            return pending.index(job.prompt_id) + 1 if job.prompt_id in pending else 1
        return None

    def worker_name(self, job: Job) -> str | None:
        """Name of the job's worker, if any."""
        worker = self.registry.get(job.worker_id) if job.worker_id is not None else None
        return worker.name if worker else None

    def counts(self) -> dict:
        """Active jobs by state."""
        out = {QUEUED: len(self._waiting), SUBMITTED: 0, RUNNING: 0}
        for on_worker in self._on_worker.values():  # the rest of the active jobs: a few per worker
            for job in on_worker.values():
                out[job.state] += 1
        return out

    # ----- submission ---------------------------------------------------------------------------
    async def submit(self, body: Any) -> tuple[int, dict]:
        """POST /prompt: accept a job; returns (status, answer) in ComfyUI's shape."""
        request = parse_prompt_request(body)
        # Workers that are offline now still count: a GPU box that reboots at night gets its jobs when it
        # is back. Their last known node lists (kept in the store) decide what they can run.
        workers = self.registry.snapshot()
        if not workers:
            raise WorkerUnavailable(NO_WORKER_REGISTERED)
        if request.prompt_id and (self.get(request.prompt_id) or await self.store.get_job(request.prompt_id)):
            raise ComfyError(409, {"error": "prompt_id already exists"})
        if request.prompt_id and self.get(request.prompt_id):  # a twin request passed the check meanwhile
            raise ComfyError(409, {"error": "prompt_id already exists"})
        job = self._new_job(request)
        capable = self._capable(job, workers)
        if not capable and self.uploads.shared:
            await self.uploads.refresh()  # another instance may have just taken an upload it names
            job.requirements = self.requirements_of(job.prompt)
            capable = self._capable(job, workers)
        if not capable:
            raise self._no_capable_worker(job, workers)
        # The freshest node list: an online worker's, else the last one an offline worker had.
        info = next((w.object_info for w in capable if w.object_info and w.state == "online"), None) \
            or next((w.object_info for w in capable if w.object_info), None)
        job.outputs_to_execute = output_nodes(job.prompt, info, request.partial_execution_targets)
        job.progress = Progress(nodes_total=len(needed_nodes(job.prompt, job.outputs_to_execute)) or len(job.prompt))
        self._track(job)
        if self.dispatching:
            worker = self.dispatcher.claim_now(job)
            if worker is not None:
                return await self.dispatcher.submit_now(job, worker, info)
        return await self.accept_queued(job, info)

    def _capable(self, job: Job, workers) -> tuple:
        """The workers whose node lists (or unknown ones) allow this job, remembered per distinct
        requirements until a worker changes (every submission asks; a batch repeats one workflow)."""
        requirements, version = job.requirements, self.registry.version
        cached = self._capable_cache.get(requirements)
        if cached is not None and cached[0] == version and cached[1] == len(workers):
            return cached[2]
        capable = tuple(w for w in workers if w.capabilities is None or w.capabilities.can_run(requirements))
        if len(self._capable_cache) >= CAPABLE_CACHE_LIMIT:
            self._capable_cache.clear()
        self._capable_cache[requirements] = (version, len(workers), capable)
        return capable

    def requirements_of(self, prompt: dict):
        """What a workflow needs from a worker (one shared object per distinct requirements)."""
        found = requirements_of(prompt, self.uploads.known_names())
        return self._requirements.setdefault(found, found)

    def _new_job(self, request) -> Job:
        self._seq += 1
        seq = self._seq
        number = request.number if request.number is not None else float(-seq if request.front else seq)
        job = Job(prompt_id=request.prompt_id or str(uuid.uuid4()), gateway_job_id=str(uuid.uuid4()), seq=seq,
                  body_data=request.worker_body(), client_id=request.client_id, priority=request.priority,
                  number=number, webhook=request.webhook)
        job.priority_given = request.priority_given
        job.number_given, job.front = request.number is not None, request.front
        job.signature = workflow_signature(job.prompt)
        job.requirements = self.requirements_of(job.prompt)
        return job

    def _no_capable_worker(self, job: Job, online: list) -> ComfyError:
        states = [self.dispatcher.worker_state(w) for w in online]
        missing = self.scheduler.explain_ineligible(self.queued_view(job), states)
        lines = [f"{name}: {item.describe()}" for name, item in missing.items()]
        node_types = sorted({t for item in missing.values() for t in item.node_types})
        explanation = {"workers": {name: item.describe() for name, item in missing.items()}}
        unknown = set(node_types)
        for item in missing.values():
            unknown &= set(item.node_types)
        if unknown and len(missing) == len(online):
            # No worker has this node type at all: answer exactly as ComfyUI does for an unknown node.
            node_id, class_type = next((nid, node["class_type"]) for nid, node in job.prompt.items()
                                       if node["class_type"] in unknown)
            return comfy_400("invalid_prompt", f"Cannot execute because node {class_type} does not exist.",
                             f"Node ID '#{node_id}'", explanation)
        files = sorted({str(f[3]) for item in missing.values() for f in item.files})
        message = "No worker can run this workflow"
        if node_types:
            message += f"; missing node types: {', '.join(node_types)}"
        if files:
            message += f"; missing files: {', '.join(files)}"
        return comfy_400("no_capable_worker", message, "\n".join(lines),
                         {"missing_node_types": node_types, "missing_files": files, **explanation})

    def _track(self, job: Job) -> None:
        self.collector.job_added()
        self.active[job.prompt_id] = job
        self._by_gateway_id[job.gateway_job_id] = job.prompt_id
        self.place(job, job.state, job.worker_id)

    def place(self, job: Job, state: str, worker_id: int | None) -> None:
        """Set a job's state and worker, keeping the per-worker and waiting indexes right.

        Also the one place where a waiting job takes its (new) position: call it after changing the
        priority, number or seq of a job.
        """
        if job.worker_id is not None:
            self._on_worker.get(job.worker_id, {}).pop(job.prompt_id, None)
        self._waiting.discard(job)
        job.state, job.worker_id = state, worker_id
        if job.prompt_id not in self.active:
            return
        if worker_id is not None and state in (SUBMITTED, RUNNING):
            self.derive(job)
            job.unpack()  # a few jobs per worker: parsed once, not at each read of its workflow
            self._on_worker.setdefault(worker_id, {})[job.prompt_id] = job
        elif state == QUEUED:
            self._waiting.add(job)
            if job.announced or job.stored:
                job.pack()  # its row is written: from now on only the queue and the send read the body

    def waiting(self) -> list[Job]:
        """Jobs in the gateway's queue (in dispatch order)."""
        return self._waiting.jobs()

    async def accept_queued(self, job: Job, object_info: dict | None) -> tuple[int, dict]:
        """Validate a job against a worker's node list, store it as waiting and answer at once."""
        if object_info:
            result = validate_prompt(job.prompt, object_info, self.uploads.known_names())
            if not result.ok:
                self.forget(job)
                return 400, result.error_body
            node_errors = result.node_errors
        else:
            node_errors = {}
        try:
            await self.insert(job)
        except Exception as exc:
            raise self.not_stored(job, exc) from None
        logger.info("job %s queued in the gateway (priority %d)", job.prompt_id, job.priority)
        self.notify(job, "queued")
        if job.state == QUEUED and job.prompt_id in self.active:
            job.pack()
        self.dispatcher.wake()
        return 200, self.answer(job, node_errors)

    async def insert(self, job: Job, fence: int | None = None) -> None:
        """Write a new job's row; on MySQL its arrival order (seq, and number unless given) comes from the
        cluster counter, so jobs accepted by different instances line up in the order they came.
        ``fence``: the row says "sent to a worker", so only the lease's epoch may write it."""
        row = job.row()
        job.stored = True
        if fence is not None:
            row["epoch"] = fence
        if not self.shared_seq:
            await self.store.insert_job(row, fetch=False, fence=fence)
            return
        if not job.number_given:
            row["number"] = None
        stored = await self.store.insert_job(row, fetch=False, fence=fence,
                                             seq_from="front" if job.front else "plain")
        if job.prompt_id in self.active or job.state in ACTIVE_STATES:
            self._waiting.discard(job)
            job.seq, job.number = stored["seq"], stored["number"]
            job.scheduler_view = None
            if job.prompt_id in self.active:
                self.place(job, job.state, job.worker_id)  # its place in the queue by the cluster's order
            self._seq = max(self._seq, job.seq)

    def not_stored(self, job: Job, exc: Exception) -> Exception:
        """Drop a job whose row could not be written (it was never accepted); the error to answer with."""
        logger.error("job %s could not be stored: %s: %s", job.prompt_id, type(exc).__name__, exc)
        self.forget(job)
        if isinstance(exc, DuplicateError):  # another gateway on the same database took this id first
            return ComfyError(409, {"error": "prompt_id already exists"})
        return StoreUnavailable()

    def release_claim(self, job: Job) -> None:
        """A job claimed for a worker but not sent after all: the worker's "sent since" count drops."""
        if job.worker_id is not None and job.submitted_at is None:
            worker = self.registry.get(job.worker_id)
            if worker is not None and worker.sent_since_report > 0:
                worker.sent_since_report -= 1

    def forget(self, job: Job) -> None:
        """Drop a job that was never accepted (a send that still holds it will see it is not its own)."""
        self.release_claim(job)
        self.active.pop(job.prompt_id, None)
        self._by_gateway_id.pop(job.gateway_job_id, None)
        self.place(job, FAILED, job.worker_id)  # out of every index, and no longer active

    def answer(self, job: Job, node_errors: dict | None = None) -> dict:
        """The POST /prompt answer for an accepted job."""
        out = {"prompt_id": job.prompt_id, "number": job.comfy_number(), "node_errors": node_errors or {}}
        if getattr(job, "priority_given", False):
            out["gateway_job_id"] = job.gateway_job_id
        return out

    async def set_priority(self, prompt_id: str, priority: int) -> Job:
        """Change the priority of a job still waiting in the gateway."""
        job = await self.find(prompt_id)
        if job is None:
            raise NotFound(f"no job with prompt_id {prompt_id}")
        if job.state != QUEUED:
            raise Conflict(f"job {prompt_id} is {job.state}; only jobs waiting in the gateway can be re-prioritised")
        self._waiting.discard(job)
        job.priority = priority
        self.place(job, job.state, job.worker_id)
        self.save(job, "priority")
        self.notify(job, "queued")
        self.dispatcher.wake()
        return job

    # ----- end of life ---------------------------------------------------------------------------
    def finish(self, job: Job, state: str, error: dict | None = None, history: dict | None = None) -> None:
        """Move a job to done or failed, persist it and keep it among the recent ones."""
        if not job.active:
            return
        self.place(job, state, job.worker_id)
        job.finished_at = time.time()
        if error is not None:
            job.error = error
        if history is not None:
            job.history = history
        self.active.pop(job.prompt_id, None)
        self._remember(job)
        self.collector.job_ended()
        self.save(job, "state", "finished_at", "error", "history", "progress", "started_at", "worker_id", "attempts")
        logger.info("job %s %s on %s", job.prompt_id, state, self.worker_name(job))
        self.notify(job, "finished")
        if self.dispatcher:
            self.dispatcher.wake()
            self.dispatcher.job_finished(job)

    def fail_queued(self, job: Job, kind: str, message: str) -> None:
        """Fail a job that never ran (cancelled, or out of retries)."""
        self.finish(job, FAILED, {"type": kind, "message": message})

    def active_on(self, worker_id: int) -> list[Job]:
        """Active jobs sent to a worker."""
        return list(self._on_worker.get(worker_id, {}).values())


__all__ = ["JobService", "ACTIVE_STATES", "DONE", "FAILED", "RUNNING"]
