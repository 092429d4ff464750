"""CostModel: signatures ignore per-run noise; speeds and costs are learned from completions."""

import math
import random

import pytest

from gateway.scheduling.cost_model import CostModel, signature_family, workflow_signature

from .helpers import WORKFLOW_A, flow


def test_signature_ignores_seeds_prefixes_colours_and_prompt_text():
    a, b = flow(WORKFLOW_A), flow(WORKFLOW_A)
    b["1"]["inputs"]["color"] = 123
    b["4"]["inputs"]["filename_prefix"] = "other/run"
    a["5"] = {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "model": ["1", 0]}}
    b["5"] = {"class_type": "KSampler", "inputs": {"seed": 99, "steps": 20, "model": ["1", 0]}}
    a["6"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}}
    b["6"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a dog"}}
    assert workflow_signature(a) == workflow_signature(b)


def test_signature_sees_work_changes():
    a, b, c = flow(WORKFLOW_A), flow(WORKFLOW_A), flow(WORKFLOW_A)
    b["1"]["inputs"]["width"] = 65
    c["3"]["inputs"]["image"] = ["1", 0]
    assert len({workflow_signature(a), workflow_signature(b), workflow_signature(c)}) == 3
    assert workflow_signature(a) == workflow_signature(dict(reversed(list(a.items()))))


def test_defaults_before_any_observation():
    model = CostModel(fallback_cost=7.0)
    assert model.worker_speed("w") == 1.0
    assert model.estimate_cost("sig") is None
    assert model.default_cost() == 7.0


def test_single_worker_learns_cost_and_stays_at_speed_one():
    model = CostModel()
    for i, seconds in enumerate([10.0, 12.0, 11.0]):
        model.record("sig", "w1", seconds, now=float(i))
    assert model.worker_speed("w1") == pytest.approx(1.0)
    assert 10.0 < model.estimate_cost("sig") < 12.0
    assert model.default_cost() == pytest.approx(model.estimate_cost("sig"), rel=0.2)


def test_few_observations_stay_near_one():
    model = CostModel()
    model.record("s", "slow", 40.0, 0.0)
    model.record("s", "fast", 10.0, 1.0)
    ratio = model.worker_speed("fast") / model.worker_speed("slow")
    assert 1.0 < ratio < 3.0  # moved towards 4, not all the way


@pytest.mark.parametrize("seed", range(5))
def test_speeds_converge_for_1_1_2_4(seed):
    rnd = random.Random(seed)
    speeds = {"a": 1.0, "b": 1.0, "c": 2.0, "d": 4.0}
    costs = {"small": 5.0, "mid": 12.0, "big": 40.0}
    model = CostModel()
    for i in range(48):
        worker, sig = rnd.choice(sorted(speeds)), rnd.choice(sorted(costs))
        model.record(sig, worker, costs[sig] / speeds[worker] * rnd.uniform(0.9, 1.1), now=float(i))
    mean = math.exp(sum(math.log(s) for s in speeds.values()) / 4)
    for worker, speed in speeds.items():
        assert model.worker_speed(worker) == pytest.approx(speed / mean, rel=0.15), worker
    for sig, cost in costs.items():
        assert model.estimate_cost(sig) == pytest.approx(cost / mean, rel=0.15), sig
    assert model.estimate_seconds("big", "d") == pytest.approx(10.0, rel=0.2)


def test_recent_runs_weigh_more():
    model = CostModel()
    for i in range(5):
        model.record("s", "w", 10.0, float(i))
    for i in range(5, 15):
        model.record("s", "w", 20.0, float(i))
    assert model.estimate_cost("s") == pytest.approx(20.0, rel=0.05)


def test_bad_values_are_ignored_and_workers_forgotten():
    model = CostModel()
    model.record("s", "w", float("nan"), 0.0)
    model.record("s", "w", -1.0, 0.0)
    assert model.estimate_cost("s") is None
    model.record("s", "a", 10.0, 0.0)
    model.record("s", "b", 5.0, 1.0)
    model.forget_worker("b")
    assert model.worker_speed("b") == 1.0
    assert model.estimate_cost("s") == pytest.approx(10.0)
    model.record("s", "a", 10.0, 2.0)  # must not trip over the forgotten worker
    assert set(model.snapshot()) == {"a"}


def test_signature_table_is_bounded():
    model = CostModel(max_signatures=3)
    for i in range(5):
        model.record(f"s{i}", "w", 1.0, float(i))
    assert model.estimate_cost("s0") is None and model.estimate_cost("s4") == pytest.approx(1.0)


def test_signature_has_a_family_shared_by_literal_changes():
    a, b = flow(WORKFLOW_A), flow(WORKFLOW_A)
    b["1"]["inputs"]["width"] = 2048
    sig_a, sig_b = workflow_signature(a), workflow_signature(b)
    assert sig_a != sig_b
    assert signature_family(sig_a) == signature_family(sig_b) is not None
    assert signature_family("plain") is None


def test_new_exact_workflow_is_estimated_by_its_family():
    model = CostModel()
    model.record("fam-a", "w", 10.0, 0.0)
    model.record("fam-b", "w", 30.0, 1.0)
    assert 10.0 < model.estimate_cost("fam-new") < 30.0
    assert model.estimate_cost("other-new") is None


def test_speeds_learned_from_families_when_every_job_differs():
    rnd = random.Random(7)
    speeds = {"a": 1.0, "b": 4.0}
    model = CostModel()
    for i in range(80):
        worker = rnd.choice(sorted(speeds))
        model.record(f"fam-{i}", worker, rnd.uniform(2.0, 20.0) / speeds[worker], now=float(i))
    assert model.worker_speed("b") / model.worker_speed("a") == pytest.approx(4.0, rel=0.35)
