"""When each worker's health check is due: once per interval, at a phase of its own."""
from gateway.workers.health import next_slot


def test_every_worker_is_due_within_one_interval_and_the_checks_are_spread_over_it():
    interval, now = 2.0, 1234.567
    slots = [next_slot(worker_id, now, interval) for worker_id in range(1, 201)]
    assert all(now < slot <= now + interval for slot in slots)
    gaps = [b - a for a, b in zip(sorted(slots), sorted(slots)[1:])]
    assert max(gaps) < interval / 50  # 200 workers: no crowd and no long silence


def test_a_worker_keeps_its_phase_from_one_interval_to_the_next():
    interval = 2.0
    first = next_slot(17, 100.0, interval)
    assert next_slot(17, first, interval) == first + interval
    assert next_slot(17, first - 1e-6, interval) == first
