"""The gateway queue kept in dispatch order (WaitingQueue) against the scheduler's own sort."""
import random

from gateway.jobs.model import Job
from gateway.jobs.waiting_queue import WaitingQueue
from gateway.scheduling.scheduler import QueuedJob, Scheduler


def make_job(seq: int, rng: random.Random) -> Job:
    number = rng.choice([None, float(seq), float(-seq), rng.uniform(-5, 5)])
    return Job(prompt_id=f"p{rng.randrange(10**9):09d}-{seq}", gateway_job_id=f"g{seq}", seq=seq, body_data={},
               priority=rng.choice([0, 0, 0, 1, 5, -2]), number=number)


def scheduler_order(jobs):
    views = [QueuedJob(prompt_id=j.prompt_id, priority=j.priority, number=j.number, seq=j.seq) for j in jobs]
    return [v.prompt_id for v in Scheduler().order(views)]


def test_order_position_and_changes_match_a_full_sort():
    rng = random.Random(7)
    queue = WaitingQueue()
    jobs = [make_job(seq, rng) for seq in range(1, 501)]
    for job in jobs:
        queue.add(job)
    assert [j.prompt_id for j in queue] == scheduler_order(jobs)
    removed = rng.sample(jobs, 100)
    for job in removed:
        queue.discard(job)
    kept = [j for j in jobs if j not in removed]
    assert len(queue) == 400 and [j.prompt_id for j in queue.jobs()] == scheduler_order(kept)
    for job in rng.sample(kept, 50):  # re-prioritised while waiting
        job.priority = rng.choice([-3, 0, 9])
        queue.rekey(job)
    order = scheduler_order(kept)
    assert [j.prompt_id for j in queue] == order
    for job in rng.sample(kept, 30):
        assert queue.position(job) == order.index(job.prompt_id)
    assert queue.position(removed[0]) is None and removed[0] not in queue


def test_version_changes_only_when_the_queue_does():
    rng = random.Random(1)
    queue = WaitingQueue()
    job = make_job(1, rng)
    start = queue.version
    queue.add(job)
    after_add = queue.version
    queue.add(job)  # already in
    queue.discard(make_job(2, rng))  # never in
    assert after_add > start and queue.version == after_add
    queue.discard(job)
    assert queue.version > after_add and len(queue) == 0
