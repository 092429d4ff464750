"""Which waiting job goes to which worker: pure logic, time and cluster state come in as arguments.

Policy of :meth:`Scheduler.plan` (deterministic: same input, same answer):

1. Jobs are walked in :meth:`Scheduler.order`: priority (bigger first), then
   ``number`` (lower first; a job without one sorts as if ``number == seq``,
   ComfyUI's own rule, and ``front: true`` is ``front_number(seq)``, below any
   explicit number so it goes to the top, later fronts first), then ``seq``.
2. A job may go to a worker that is ``online``, is not in the job's
   ``excluded_workers``, has the job's node types and files
   (:class:`~gateway.capabilities.Capabilities`; unknown capabilities make a
   worker ineligible unless ``unknown_capabilities_eligible``) and has room:
   ``load < capacity`` with ``load = max(reported_queue + sent_since_report,
   in_flight)``.  A job that fits nowhere waits without blocking later jobs.
3. Among those, least ``(load + 1) / weight`` wins (the load the worker would
   have with this job, so weight 2 gets two jobs for weight 1's one), then the
   higher speed, then the lower id.  Loads are updated locally, so one call
   spreads a burst evenly.
4. Endgame (``endgame=True``): each online eligible worker has a virtual time
   at which it is free: ``now + busy_remaining_seconds`` plus its jobs that did
   not come through the gateway at the mean cost.  A job costs
   ``estimated_cost / speed`` (mean cost when unknown).  If a worker at least
   ``speed_margin`` faster than the chosen one would finish the job sooner
   (virtual free time + cost/speed_fast < now + cost/speed_chosen), the job
   goes to that faster worker when it has room, and otherwise waits for it.
   Every job walked, placed or not, is added to the virtual time of the worker
   that would finish it first, so with a long queue the fast workers' virtual
   times grow and slow workers keep getting work; the rule only holds slow
   workers back at the tail, where a big job on a slow worker would set the
   makespan.
   The virtual times are kept for the first ``ENDGAME_WALK_FACTOR`` jobs per
   worker slot (at least ``ENDGAME_WALK_MIN``); a job deeper in a long queue
   starts after all of those, far from the tail, and only takes a free
   eligible worker by rule 3, so a walk down a deep queue (a free worker
   that few jobs can use) stays cheap.
5. A lower-priority job never takes the last free slot of a worker that a
   waiting higher-priority job (eligible there, held back by rule 4) could use.

Draining, offline and disabled workers get nothing new.  Worker loss:
:func:`after_worker_lost`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

from .capabilities import Capabilities, Missing, Requirements

FRONT_BASE = -1e15
# How far down the queue plan() keeps the endgame's virtual times: this many jobs per worker slot, plus
# a floor. A job further down starts after all of these, far from the tail the endgame rule is about.
ENDGAME_WALK_FACTOR = 4
ENDGAME_WALK_MIN = 200


def front_number(seq: int) -> float:
    """The ``number`` a ``front: true`` submission gets: ahead of all others, later fronts first."""
    return FRONT_BASE - seq


def remaining_seconds(now: float, started_at: float | None, cost: float, speed: float,
                      queued_costs: Iterable[float] = ()) -> float:
    """Estimated seconds until a worker ends its running job (started at ``started_at``) and its queued ones.

    A running job past its estimate is assumed to need as long again as it has
    overrun, so a stuck worker does not look free forever.
    """
    speed = speed if speed > 0 else 1.0
    running = 0.0 if started_at is None else abs(started_at + cost / speed - now)
    return running + sum(queued_costs) / speed


@dataclass
class WorkerState:
    """What the scheduler needs to know about one worker at planning time."""

    id: Any
    name: str = ""
    state: str = "online"  # online | offline | disabled | draining
    capacity: int = 1  # max_queue: jobs it may hold, the running one included
    weight: float = 1.0
    reported_queue: int = 0  # its own queue_remaining (also counts jobs not sent by the gateway)
    sent_since_report: int = 0  # jobs the gateway sent since that report
    in_flight: int = 0  # gateway jobs submitted or running there
    speed: float = 1.0  # relative speed from the CostModel
    busy_remaining_seconds: float = 0.0  # until the gateway's jobs there end (see remaining_seconds)
    capabilities: Capabilities | None = None  # None: object_info not fetched yet


@dataclass
class QueuedJob:
    """A job waiting in the gateway's queue."""

    prompt_id: str
    priority: int = 0
    number: float | None = None
    seq: int = 0
    requirements: Requirements = field(default_factory=Requirements)
    estimated_cost: float | None = None  # seconds at speed 1.0
    excluded_workers: frozenset = frozenset()


@dataclass(frozen=True)
class Assignment:
    """Send this job to this worker now."""

    prompt_id: str
    worker_id: Any


def after_worker_lost(job_started: bool, attempts: int, max_retries: int) -> Literal["requeue", "retry", "fail"]:
    """Fate of a job whose worker died: not started -> requeue (no attempt used); else retry or fail.

    ``attempts`` counts the started runs that were lost, this one included, so
    a job runs at most ``max_retries + 1`` times.
    """
    if not job_started:
        return "requeue"
    return "retry" if attempts <= max_retries else "fail"


class Scheduler:
    """Decides assignments from a snapshot of workers and waiting jobs."""

    def __init__(self, endgame: bool = True, speed_margin: float = 0.1,
                 unknown_capabilities_eligible: bool = False, default_cost: float = 1.0):
        self.endgame = endgame
        self.speed_margin = speed_margin
        self.unknown_capabilities_eligible = unknown_capabilities_eligible
        self.default_cost = default_cost

    after_worker_lost = staticmethod(after_worker_lost)

    @staticmethod
    def sort_key(job: QueuedJob) -> tuple:
        """Priority desc, then number asc (seq when absent), then seq, then prompt id."""
        number = float(job.seq) if job.number is None else float(job.number)
        return (-job.priority, number, job.seq, job.prompt_id)

    def order(self, jobs: Iterable[QueuedJob]) -> list[QueuedJob]:
        """The jobs in the order they are offered to workers."""
        return sorted(jobs, key=self.sort_key)

    @staticmethod
    def load(worker: WorkerState) -> int:
        """Jobs on the worker as far as the gateway can tell."""
        return max(worker.reported_queue + worker.sent_since_report, worker.in_flight)

    def has_room(self, worker: WorkerState) -> bool:
        """Online and under capacity."""
        return worker.state == "online" and self.load(worker) < max(1, worker.capacity)

    def missing(self, job: QueuedJob, worker: WorkerState) -> Missing:
        """Everything that keeps this job off this worker (empty Missing = eligible)."""
        reasons = []
        if worker.state != "online":
            reasons.append(f"worker is {worker.state}")
        if worker.id in job.excluded_workers:
            reasons.append("the job already failed on this worker")
        caps = worker.capabilities
        if caps is None:
            if not self.unknown_capabilities_eligible:
                reasons.append("its node list is not known yet")
            return Missing(reasons=tuple(reasons))
        found = caps.missing(job.requirements)
        return Missing(found.node_types, found.files, tuple(reasons))

    def eligible(self, job: QueuedJob, worker: WorkerState) -> bool:
        """Could this worker take this job (ignoring room)?"""
        return self.missing(job, worker).empty

    def explain_ineligible(self, job: QueuedJob, workers: Iterable[WorkerState]) -> dict[str, Missing]:
        """For each worker that cannot take the job, keyed by name (or id), what stands in the way."""
        out = {}
        for worker in workers:
            found = self.missing(job, worker)
            if not found.empty:
                out[worker.name or str(worker.id)] = found
        return out

    def plan(self, now: float, workers: Sequence[WorkerState], jobs: Iterable[QueuedJob],
             default_cost: float | None = None, ordered: bool = False) -> list[Assignment]:
        """Assignments to make now (see the module docstring for the policy).

        ``ordered=True``: ``jobs`` already comes in :meth:`order` (an iterator over a kept sorted queue);
        it is then read lazily and only as far as there are free slots, so a deep queue costs nothing
        when the workers are full. ``default_cost`` should be given with it (the mean cost of the
        queue would need a pass over all of it).
        """
        online = sorted((w for w in workers if w.state == "online"), key=lambda w: _id_key(w.id))
        if not online:
            return []
        if ordered:
            ordered_jobs: Iterable[QueuedJob] = jobs
            mean_cost = default_cost or self.default_cost
        else:
            ordered_jobs = self.order(jobs)
            mean_cost = default_cost or _mean_cost(ordered_jobs) or self.default_cost
        load = {w.id: self.load(w) for w in online}
        free_at = {w.id: now + max(0.0, w.busy_remaining_seconds)
                   + max(0, load[w.id] - w.in_flight) * mean_cost / _speed(w) for w in online}
        held: dict[Any, int] = {}  # worker id -> highest priority held back while eligible there
        rooms = sum(max(0, max(1, w.capacity) - load[w.id]) for w in online)
        # Jobs walked with the endgame's bookkeeping; past them the queue is far from its tail (rule 4
        # cannot hold anything back there), so deeper jobs only look for a free eligible worker.
        full_walk = ENDGAME_WALK_FACTOR * sum(max(1, w.capacity) for w in online) + ENDGAME_WALK_MIN
        groups: dict[tuple, list[WorkerState]] = {}  # (requirements, excluded) -> eligible online workers
        no_room: dict[tuple, int] = {}  # group -> len(out) when none of its workers had room
        out: list[Assignment] = []
        for walked, job in enumerate(ordered_jobs):
            if rooms <= 0:
                break
            group = (job.requirements, job.excluded_workers)
            elig = groups.get(group)
            if elig is None:
                elig = groups[group] = [w for w in online if self._eligible_fast(job, w)]
            if not elig:
                continue
            deep = not self.endgame or walked >= full_walk
            if deep and no_room.get(group) == len(out):
                continue  # nothing was placed since this group found no room (later jobs rank no higher)
            room = [w for w in elig if load[w.id] < max(1, w.capacity)
                    and not (held.get(w.id, job.priority) > job.priority and load[w.id] == max(1, w.capacity) - 1)]
            if not room:
                no_room[group] = len(out)
            chosen = min(room, key=lambda w: ((load[w.id] + 1) / _weight(w), -_speed(w), _id_key(w.id)),
                         default=None)
            if not deep:
                cost = job.estimated_cost if job.estimated_cost and job.estimated_cost > 0 else mean_cost
                finish = {w.id: max(free_at[w.id], now) + cost / _speed(w) for w in elig}
                if chosen is not None:
                    faster = [w for w in elig if _speed(w) >= _speed(chosen) * (1 + self.speed_margin)
                              and finish[w.id] < finish[chosen.id] - 1e-9]
                    if faster:
                        target = min(faster, key=lambda w: (finish[w.id], -_speed(w), _id_key(w.id)))
                        chosen = target if any(w.id == target.id for w in room) else None
                        if chosen is None:  # waits for the faster worker: keep its slots from lower priorities
                            for w in room:
                                held[w.id] = max(held.get(w.id, job.priority), job.priority)
                runner = chosen or min(elig, key=lambda w: (finish[w.id], -_speed(w), _id_key(w.id)))
                free_at[runner.id] = finish[runner.id]
            if chosen is not None:
                load[chosen.id] += 1
                rooms -= 1
                out.append(Assignment(job.prompt_id, chosen.id))
        return out

    def _eligible_fast(self, job: QueuedJob, worker: WorkerState) -> bool:
        """:meth:`eligible` for an online worker, with the node-list check remembered per requirements."""
        if worker.id in job.excluded_workers:
            return False
        caps = worker.capabilities
        if caps is None:
            return self.unknown_capabilities_eligible
        return caps.can_run(job.requirements)


def _speed(worker: WorkerState) -> float:
    return worker.speed if worker.speed and worker.speed > 0 else 1.0


def _weight(worker: WorkerState) -> float:
    return worker.weight if worker.weight and worker.weight > 0 else 1.0


def _id_key(worker_id: Any) -> tuple:
    """Sort ids of mixed types deterministically (ints numerically, then strings)."""
    return (0, worker_id, "") if isinstance(worker_id, (int, float)) else (1, 0, str(worker_id))


def _mean_cost(jobs: Sequence[QueuedJob]) -> float | None:
    known = [j.estimated_cost for j in jobs if j.estimated_cost and j.estimated_cost > 0]
    return sum(known) / len(known) if known else None
