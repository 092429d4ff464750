"""Makespan of simulated runs (Scheduler.plan + CostModel, simulated time) against total_work / total_speed."""

import random

import pytest

from .simulation import SimJob, lower_bound, simulate

SPEEDS = [1.0, 1.0, 2.0, 4.0]


def mixed_jobs(seed, count=200):
    """Six workflow types whose costs span 10x, in random order."""
    rnd = random.Random(seed)
    types = [(f"type{k}", cost) for k, cost in enumerate([2.0, 3.0, 5.0, 8.0, 12.0, 20.0])]
    return [SimJob(f"p{i}", *rnd.choice(types)) for i in range(count)]


def test_equal_jobs_makespan_within_10_percent():
    jobs = [SimJob(f"p{i}", "same", 10.0) for i in range(120)]
    makespan, workers, model = simulate(SPEEDS, jobs)
    ratio = makespan / lower_bound(SPEEDS, jobs)
    print(f"equal jobs: makespan/lower bound = {ratio:.3f}, jobs per worker {[len(w.done) for w in workers]}")
    assert ratio <= 1.10
    assert sum(len(w.done) for w in workers) == 120
    assert model.worker_speed(4) / model.worker_speed(1) == pytest.approx(4.0, rel=0.15)


def test_mixed_jobs_makespan_within_10_percent():
    jobs = mixed_jobs(seed=1)
    makespan, workers, _ = simulate(SPEEDS, jobs)
    ratio = makespan / lower_bound(SPEEDS, jobs)
    print(f"mixed jobs: makespan/lower bound = {ratio:.3f}, jobs per worker {[len(w.done) for w in workers]}")
    assert ratio <= 1.10


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("capacity, jitter", [(1, 0.0), (2, 0.0), (1, 0.3)])
def test_mixed_jobs_many_runs(seed, capacity, jitter):
    jobs = mixed_jobs(seed)
    makespan, _, _ = simulate(SPEEDS, jobs, capacity=capacity, jitter=jitter, seed=seed)
    assert makespan / lower_bound(SPEEDS, jobs) <= 1.10


@pytest.mark.parametrize("seed", range(3))
def test_every_job_different_within_10_percent(seed):
    """Each job its own exact workflow (one family): costs and speeds come from the family level."""
    jobs = [SimJob(j.prompt_id, f"family-{j.prompt_id}", j.cost) for j in mixed_jobs(seed)]
    makespan, _, _ = simulate(SPEEDS, jobs, jitter=0.2, seed=seed)
    assert makespan / lower_bound(SPEEDS, jobs) <= 1.10


def test_endgame_matters():
    """Without the endgame rule the slow workers take big jobs at the tail."""
    ratios = {}
    for endgame in (True, False):
        worst = 0.0
        for seed in range(10):
            jobs = mixed_jobs(seed)
            makespan, _, _ = simulate(SPEEDS, jobs, endgame=endgame)
            worst = max(worst, makespan / lower_bound(SPEEDS, jobs))
        ratios[endgame] = worst
    print(f"worst ratio with endgame {ratios[True]:.3f}, without {ratios[False]:.3f}")
    assert ratios[True] < ratios[False]


def test_all_jobs_complete_exactly_once():
    jobs = mixed_jobs(seed=3, count=50)
    _, workers, _ = simulate(SPEEDS, jobs, capacity=3)
    done = sorted(j.prompt_id for w in workers for j in w.done)
    assert done == sorted(j.prompt_id for j in jobs)
