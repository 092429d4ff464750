"""Scheduler: order, capacity, eligibility, weights, bursts, priorities, endgame, retries."""

from collections import Counter

import pytest

from gateway.scheduling.capabilities import Capabilities, requirements_of
from gateway.scheduling.scheduler import (
    Assignment,
    QueuedJob,
    Scheduler,
    WorkerState,
    after_worker_lost,
    front_number,
    remaining_seconds,
)

from .helpers import CHECKPOINT_FLOW, WORKFLOW_A, WORKFLOW_B, flow, object_info

CAPS = Capabilities.from_object_info(object_info())
NOW = 1000.0


def worker(wid, **kw):
    kw.setdefault("capabilities", CAPS)
    return WorkerState(wid, f"w{wid}", **kw)


def job(pid, **kw):
    kw.setdefault("seq", int(pid[1:]) if pid[1:].isdigit() else 0)
    return QueuedJob(pid, **kw)


def caps_without(*class_types, ckpts=None):
    info = object_info()
    for name in class_types:
        info.pop(name)
    if ckpts is not None:
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = ckpts
    return Capabilities.from_object_info(info)


def counts(assignments):
    return Counter(a.worker_id for a in assignments)


# ordering -----------------------------------------------------------------------------------------

def test_order_priority_then_number_then_arrival():
    jobs = [job("a", seq=1), job("b", seq=2, priority=5), job("c", seq=3), job("d", seq=4, number=-100.5),
            job("e", seq=5, number=front_number(5)), job("f", seq=6, number=front_number(6)), job("g", seq=0)]
    assert [j.prompt_id for j in Scheduler().order(jobs)] == ["b", "f", "e", "d", "g", "a", "c"]


def test_plan_follows_the_order():
    jobs = [job("low", seq=1), job("high", seq=2, priority=1)]
    assert Scheduler().plan(NOW, [worker(1)], jobs) == [Assignment("high", 1)]


# capacity and load ---------------------------------------------------------------------------------

def test_load_counts_the_larger_of_reported_and_in_flight():
    s = Scheduler()
    assert s.load(worker(1, reported_queue=2, sent_since_report=1, in_flight=1)) == 3
    assert s.load(worker(1, reported_queue=0, sent_since_report=0, in_flight=2)) == 2
    assert not s.has_room(worker(1, capacity=2, in_flight=2))
    assert s.has_room(worker(1, capacity=3, in_flight=2))
    assert not s.has_room(worker(1, state="draining"))


def test_capacity_is_respected_and_foreign_jobs_count():
    workers = [worker(1, capacity=2, reported_queue=1), worker(2, capacity=1, reported_queue=1)]
    plan = Scheduler().plan(NOW, workers, [job(f"j{i}") for i in range(5)])
    assert plan == [Assignment("j0", 1)]


@pytest.mark.parametrize("state", ["offline", "disabled", "draining"])
def test_not_online_workers_get_nothing(state):
    plan = Scheduler().plan(NOW, [worker(1, state=state), worker(2, in_flight=1)], [job("j1")])
    assert plan == []


# eligibility ------------------------------------------------------------------------------------------

def test_missing_node_type_is_not_eligible():
    j = job("j1", requirements=requirements_of(flow(WORKFLOW_A)))
    workers = [worker(1, capabilities=caps_without("ImageBlur")), worker(2, in_flight=0)]
    assert Scheduler().plan(NOW, workers, [j]) == [Assignment("j1", 2)]
    assert not Scheduler().eligible(j, workers[0]) and Scheduler().eligible(j, workers[1])


def test_missing_checkpoint_is_not_eligible_and_explained():
    j = job("j1", requirements=requirements_of(flow(CHECKPOINT_FLOW)))
    workers = [worker(1, capabilities=caps_without(ckpts=["sdxl.safetensors"])),
               worker(2, capabilities=caps_without("LoraLoaderModelOnly")), worker(3, state="offline")]
    assert Scheduler().plan(NOW, workers, [j]) == []
    why = Scheduler().explain_ineligible(j, workers)
    assert set(why) == {"w1", "w2", "w3"}
    assert why["w1"].describe() == \
        "missing file: ckpt_name 'model_03.safetensors' (CheckpointLoaderSimple node 1)"
    assert why["w2"].describe() == "missing node type: LoraLoaderModelOnly"
    assert why["w3"].describe() == "worker is offline"


def test_uploaded_files_are_not_requirements():
    w = worker(1)
    assert not Scheduler().eligible(job("j", requirements=requirements_of(flow(WORKFLOW_B))), w)
    uploaded = job("j", requirements=requirements_of(flow(WORKFLOW_B), known_uploads={"input.png"}))
    assert Scheduler().plan(NOW, [w], [uploaded]) == [Assignment("j", 1)]


def test_unknown_capabilities_policy():
    w = worker(1, capabilities=None)
    assert Scheduler().plan(NOW, [w], [job("j")]) == []
    assert Scheduler().explain_ineligible(job("j"), [w])["w1"].describe() == "its node list is not known yet"
    assert Scheduler(unknown_capabilities_eligible=True).plan(NOW, [w], [job("j")]) == [Assignment("j", 1)]


def test_excluded_workers_are_avoided():
    j = job("j", excluded_workers=frozenset({1}))
    assert Scheduler().plan(NOW, [worker(1), worker(2, reported_queue=0)], [j]) == [Assignment("j", 2)]
    assert Scheduler().plan(NOW, [worker(1)], [j]) == []
    assert "failed on this worker" in Scheduler().explain_ineligible(j, [worker(1)])["w1"].describe()


# spreading and weights ----------------------------------------------------------------------------

def test_burst_spreads_evenly():
    workers = [worker(i, capacity=10) for i in range(1, 5)]
    assert sorted(counts(Scheduler().plan(NOW, workers, [job(f"j{i}") for i in range(40)])).values()) == [10] * 4
    spread = counts(Scheduler().plan(NOW, workers, [job(f"j{i}") for i in range(30)]))
    assert max(spread.values()) - min(spread.values()) <= 1


def test_least_load_first_then_speed_then_id():
    workers = [worker(1, in_flight=1, capacity=3), worker(2, capacity=3), worker(3, capacity=3, speed=1.05)]
    assert Scheduler(endgame=False).plan(NOW, workers, [job("j")]) == [Assignment("j", 3)]


def test_weight_two_gets_twice_the_jobs_in_a_long_run():
    workers = {1: worker(1, capacity=1000, weight=1.0), 2: worker(2, capacity=1000, weight=2.0)}
    got = Counter()
    for i in range(300):  # one arrival at a time, nothing finishes
        (a,) = Scheduler().plan(NOW + i, list(workers.values()), [job(f"j{i}")])
        got[a.worker_id] += 1
        workers[a.worker_id].in_flight += 1
    assert got == {1: 100, 2: 200}


def test_weight_decides_between_idle_workers():
    workers = [worker(1, weight=1.0), worker(2, weight=2.0)]
    assert Scheduler().plan(NOW, workers, [job("j")]) == [Assignment("j", 2)]


# blocking and priorities ----------------------------------------------------------------------------

def test_no_head_of_line_blocking():
    needs_lora = job("j1", requirements=requirements_of(flow(CHECKPOINT_FLOW)))
    anywhere = job("j2", requirements=requirements_of(flow(WORKFLOW_A)))
    workers = [worker(1, in_flight=1), worker(2, capabilities=caps_without("LoraLoaderModelOnly"))]
    assert Scheduler().plan(NOW, workers, [needs_lora, anywhere]) == [Assignment("j2", 2)]


def test_high_priority_job_gets_the_only_slot_it_can_use():
    high = job("h", seq=2, priority=1, requirements=requirements_of(flow(CHECKPOINT_FLOW)))
    low = job("l", seq=1)
    workers = [worker(1, capabilities=caps_without("LoraLoaderModelOnly")), worker(2)]
    assert Scheduler().plan(NOW, workers, [low, high]) == [Assignment("h", 2), Assignment("l", 1)]
    assert Scheduler().plan(NOW, [workers[1]], [low, high]) == [Assignment("h", 2)]


def test_lower_priority_never_takes_last_slot_kept_for_a_waiting_higher_one():
    # a big high-priority job waits for the fast worker (endgame); the slow worker's last slot stays free
    slow = worker(1, speed=1.0)
    fast = worker(2, speed=4.0, in_flight=1, busy_remaining_seconds=1.0)
    big = job("big", seq=1, priority=5, estimated_cost=100.0)
    small = job("small", seq=2, priority=0, estimated_cost=1.0)
    assert Scheduler().plan(NOW, [slow, fast], [big, small]) == []
    same = job("small", seq=2, priority=5, estimated_cost=1.0)
    assert Scheduler().plan(NOW, [slow, fast], [big, same]) == [Assignment("small", 1)]
    roomy = worker(1, speed=1.0, capacity=2)  # not its last slot: fine
    assert Scheduler().plan(NOW, [roomy, fast], [big, small]) == [Assignment("small", 1)]


# endgame ------------------------------------------------------------------------------------------

def test_endgame_keeps_the_tail_job_for_the_faster_worker():
    slow = worker(1, speed=1.0)
    fast = worker(2, speed=4.0, in_flight=1, busy_remaining_seconds=2.0)
    tail = [job("j", estimated_cost=40.0)]
    assert Scheduler().plan(NOW, [slow, fast], tail) == []  # 2 + 10 < 40
    assert Scheduler(endgame=False).plan(NOW, [slow, fast], tail) == [Assignment("j", 1)]
    slower_fast = worker(2, speed=4.0, in_flight=1, busy_remaining_seconds=35.0)
    assert Scheduler().plan(NOW, [slow, slower_fast], tail) == [Assignment("j", 1)]  # 35 + 10 > 40


def test_endgame_does_not_hold_back_when_the_queue_is_long():
    slow = worker(1, speed=1.0)
    fast = worker(2, speed=4.0, in_flight=1, busy_remaining_seconds=2.0)
    queue = [job(f"j{i}", seq=i, estimated_cost=40.0) for i in range(6)]
    # the fast worker would finish j0..j2 by 32; j3 would end at 42 there, at 40 on the slow one
    assert Scheduler().plan(NOW, [slow, fast], queue) == [Assignment("j3", 1)]


def test_endgame_prefers_a_faster_worker_with_room():
    slow = worker(1, speed=1.0, capacity=2)
    fast = worker(2, speed=4.0, capacity=2, in_flight=1, busy_remaining_seconds=2.0)
    assert Scheduler().plan(NOW, [slow, fast], [job("j", estimated_cost=40.0)]) == [Assignment("j", 2)]


def test_endgame_uses_the_mean_cost_when_unknown():
    slow = worker(1, speed=1.0)
    fast = worker(2, speed=4.0, in_flight=1, busy_remaining_seconds=2.0)
    assert Scheduler().plan(NOW, [slow, fast], [job("j")], default_cost=40.0) == []
    assert Scheduler().plan(NOW, [slow, fast], [job("j")], default_cost=1.0) == [Assignment("j", 1)]


def test_equal_speeds_never_hold_back():
    workers = [worker(1), worker(2, in_flight=1, busy_remaining_seconds=0.1, speed=1.05)]
    assert Scheduler().plan(NOW, workers, [job("j", estimated_cost=50.0)]) == [Assignment("j", 1)]


def test_plan_is_deterministic():
    workers = [worker(i, capacity=3, speed=s) for i, s in ((1, 1.0), (2, 2.0), (3, 4.0))]
    jobs = [job(f"j{i}", seq=i, estimated_cost=float(1 + i % 7)) for i in range(12)]
    first = Scheduler().plan(NOW, workers, jobs)
    assert first == Scheduler().plan(NOW, list(reversed(workers)), list(reversed(jobs)))


def test_remaining_seconds():
    assert remaining_seconds(10.0, 5.0, 20.0, 2.0, [4.0]) == pytest.approx(7.0)
    assert remaining_seconds(15.0, 5.0, 20.0, 2.0) == 0.0
    assert remaining_seconds(18.0, 5.0, 20.0, 2.0) == pytest.approx(3.0)  # overran by 3: assume 3 more
    assert remaining_seconds(0.0, None, 20.0, 2.0) == 0.0


# worker loss ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("started, attempts, expected", [
    (False, 5, "requeue"), (True, 1, "retry"), (True, 2, "retry"), (True, 3, "fail"), (True, 1, "retry")])
def test_after_worker_lost(started, attempts, expected):
    assert after_worker_lost(started, attempts, max_retries=2) == expected
    assert Scheduler.after_worker_lost(started, attempts, 2) == expected


def test_no_retries_configured():
    assert after_worker_lost(True, 1, max_retries=0) == "fail"


# deep queues -----------------------------------------------------------------------------------------

def test_an_ordered_queue_read_lazily_plans_as_the_sorted_list_does():
    workers = [worker(i, capacity=2, speed=s, in_flight=i % 2) for i, s in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 1.0))]
    jobs = [job(f"j{i}", seq=i, priority=i % 3, estimated_cost=float(1 + i % 5)) for i in range(40)]
    ordered = Scheduler().order(jobs)
    taken = []

    def lazily():
        for item in ordered:
            taken.append(item)
            yield item

    assert Scheduler().plan(NOW, workers, iter(lazily()), ordered=True, default_cost=3.0) == \
        Scheduler().plan(NOW, workers, jobs, default_cost=3.0)
    assert len(taken) < len(ordered)  # read only as far as there was room


def test_a_free_worker_finds_the_one_job_it_can_run_at_the_end_of_a_deep_queue():
    busy = [worker(i, in_flight=1) for i in range(1, 50)]  # full: they could run everything
    free = worker(99, capabilities=caps_without("CheckpointLoaderSimple"))  # only WORKFLOW_A kinds of jobs
    needs_checkpoint = requirements_of(flow(CHECKPOINT_FLOW))
    deep = [job(f"j{i}", seq=i, requirements=needs_checkpoint) for i in range(20_000)]
    last = job("last", seq=20_001, requirements=requirements_of(flow(WORKFLOW_A)))
    assert free.capabilities.can_run(needs_checkpoint) is False
    for endgame in (True, False):
        assert Scheduler(endgame=endgame).plan(NOW, busy + [free], iter(deep + [last]), ordered=True,
                                               default_cost=1.0) == [Assignment("last", 99)]


def test_can_run_remembers_what_missing_says():
    needs_checkpoint = requirements_of(flow(CHECKPOINT_FLOW))
    caps = caps_without("LoraLoaderModelOnly")
    for requirements in (needs_checkpoint, requirements_of(flow(WORKFLOW_A))):
        assert caps.can_run(requirements) is caps.missing(requirements).empty
        assert caps.can_run(requirements) is caps.missing(requirements).empty  # from the cache
    assert CAPS.can_run(needs_checkpoint) is True
