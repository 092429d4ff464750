"""LongLivedJobs: freezes as jobs arrive, collects once when a deep queue has drained."""
import gc

import pytest

from gateway.jobs import collector
from gateway.jobs.collector import LongLivedJobs


@pytest.fixture(autouse=True)
def restore_gc():
    yield
    gc.unfreeze()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_objects_of_waiting_jobs_leave_the_collected_generations_every_thousand_jobs():
    active = [0]
    tracker = LongLivedJobs(lambda: active[0], Clock())
    gc.unfreeze()
    kept = [{"job": i, "nodes": [{"n": j} for j in range(3)]} for i in range(collector.FREEZE_EVERY)]
    before = gc.get_freeze_count()
    for _ in range(collector.FREEZE_EVERY - 1):
        tracker.job_added()
    assert gc.get_freeze_count() == before and tracker.freezes == 0
    tracker.job_added()
    assert tracker.freezes == 1 and gc.get_freeze_count() >= before + len(kept)


def test_a_drained_queue_gives_frozen_cycles_back_once_and_not_too_often():
    clock, active = Clock(), [50_000]
    tracker = LongLivedJobs(lambda: active[0], clock)
    for _ in range(collector.UNFREEZE_AFTER):
        tracker.job_added()
    tracker.job_ended()
    assert tracker.collections == 0  # the queue is still deep
    active[0] = 10
    clock.now = collector.UNFREEZE_INTERVAL - 1
    tracker.job_ended()
    assert tracker.collections == 0  # too soon after start

    class Cycle:
        pass

    for _ in range(100):  # garbage cycles built and frozen while the queue was deep
        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
    gc.freeze()
    clock.now = collector.UNFREEZE_INTERVAL + 1
    tracker.job_ended()
    assert tracker.collections == 1
    assert not [o for o in gc.get_objects() if type(o).__name__ == "Cycle"]
    tracker.job_ended()
    assert tracker.collections == 1  # nothing new was frozen since
