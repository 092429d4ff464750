"""Discrete-event simulation of workers running jobs, driven only by Scheduler.plan and CostModel."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from gateway.scheduling.capabilities import Capabilities
from gateway.scheduling.cost_model import CostModel
from gateway.scheduling.scheduler import QueuedJob, Scheduler, WorkerState, remaining_seconds


@dataclass
class SimJob:
    """One job: its workflow signature and its true cost at speed 1.0."""

    prompt_id: str
    signature: str
    cost: float
    priority: int = 0
    actual: float = 0.0  # run seconds on the worker it was given to


@dataclass
class SimWorker:
    """A simulated ComfyUI server: runs its queue one job at a time, in order."""

    id: int
    speed: float
    capacity: int = 1
    weight: float = 1.0
    queue: list = field(default_factory=list)  # [SimJob]; the first one runs
    started_at: float | None = None
    done: list = field(default_factory=list)


def simulate(speeds, jobs, capacity=1, endgame=True, weights=None, jitter=0.0, seed=0):
    """Run all jobs (all queued at t=0); returns (makespan, workers, model).

    Each run takes cost / speed, times a factor drawn from 1 +- jitter.
    """
    rnd = random.Random(seed)
    workers = [SimWorker(i + 1, s, capacity, (weights or [1.0] * len(speeds))[i]) for i, s in enumerate(speeds)]
    scheduler = Scheduler(endgame=endgame)
    model = CostModel()
    waiting = {job.prompt_id: (seq, job) for seq, job in enumerate(jobs)}
    now = 0.0
    while True:
        states = [_state(w, now, model) for w in workers]
        queued = [QueuedJob(j.prompt_id, j.priority, None, seq, estimated_cost=model.estimate_cost(j.signature))
                  for seq, j in waiting.values()]
        for a in scheduler.plan(now, states, queued, default_cost=model.default_cost()):
            _, job = waiting.pop(a.prompt_id)
            worker = workers[a.worker_id - 1]
            worker.queue.append(job)
            if worker.started_at is None:
                worker.started_at = now
            job.actual = job.cost / worker.speed * rnd.uniform(1 - jitter, 1 + jitter)
        busy = [w for w in workers if w.queue]
        if not busy:
            assert not waiting, "jobs left but nothing runs: the scheduler stalled"
            return now, workers, model
        worker = min(busy, key=lambda w: (w.started_at + w.queue[0].actual, w.id))
        now = worker.started_at + worker.queue[0].actual
        job = worker.queue.pop(0)
        model.record(job.signature, worker.id, now - worker.started_at, now)
        worker.done.append(job)
        worker.started_at = now if worker.queue else None


def _state(worker: SimWorker, now: float, model: CostModel) -> WorkerState:
    speed = model.worker_speed(worker.id)
    costs = [model.estimate_cost(j.signature) or model.default_cost() for j in worker.queue]
    busy = remaining_seconds(now, worker.started_at, costs[0], speed, costs[1:]) if costs else 0.0
    return WorkerState(worker.id, f"w{worker.id}", "online", worker.capacity, worker.weight,
                       reported_queue=len(worker.queue), in_flight=len(worker.queue), speed=speed,
                       busy_remaining_seconds=busy, capabilities=Capabilities())


def lower_bound(speeds, jobs) -> float:
    """Total work divided by total speed."""
    return sum(j.cost for j in jobs) / sum(speeds)
