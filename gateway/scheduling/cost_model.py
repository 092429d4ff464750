"""How long jobs take: per-workflow cost and per-worker speed, learned from completions.

Model: a run of workflow ``s`` on worker ``w`` takes ``cost(s) / speed(w)``
seconds.  Both sides are learned online from observations ``(s, w, t)``:

* per (signature, worker) the model keeps an exponentially weighted average of
  ``log t`` (the average of recent run times; the first observation counts
  fully, later ones with weight ``alpha``);
* when worker ``w`` finishes ``s`` and other workers ``u`` have run ``s`` too,
  each gives an estimate ``log speed(w) = log speed(u) + avg_log_t(s,u) -
  avg_log_t(s,w)``; ``w`` moves towards their mean and each ``u`` towards
  ``w``, by a step that starts small (a prior of ``prior_weight``
  pseudo-observations at speed 1.0, so few comparisons stay near 1.0) and
  settles at ``speed_alpha``;
* ``cost(s)`` is the mean over the workers that ran ``s`` of ``t * speed``.

Signatures have two levels, ``"<family>-<exact>"`` (see
:func:`workflow_signature`): the family is the graph's shape (class types and
links), the exact part adds the literal inputs.  When no other worker has run
the exact workflow, workers are compared on the family instead (slower
averages, half steps), so speeds are learned even when every job differs
(e.g. a new size each time); an unknown exact workflow is estimated by its
family's cost.

Speeds are relative: they are reported divided by the geometric mean speed of
the workers seen so far, so "1.0" is the cluster's typical worker and an
unknown worker is assumed typical.  Costs are in seconds at speed 1.0 on that
same scale.  Every call is O(1) or O(workers).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MIN_SECONDS = 1e-3
TEXT_INPUTS = ("text", "prompt", "positive", "negative", "string")


def is_randomised_input(name: str, value: Any = None) -> bool:
    """Inputs that change per run without changing the work: seeds, output prefixes, colours, prompt text."""
    lowered = name.lower()
    if "seed" in lowered or lowered in ("filename_prefix", "color"):
        return True
    return isinstance(value, str) and lowered.startswith(TEXT_INPUTS)


def workflow_signature(prompt: dict) -> str:
    """Stable ``"<family>-<exact>"`` hash of a prompt, ignoring randomised inputs (seeds, prefixes, ...).

    ``family`` covers class types and links only; ``exact`` also the literal inputs.
    """
    shape, exact = [], []
    for node_id in sorted(prompt or {}, key=str):
        node = prompt[node_id]
        if not isinstance(node, dict):
            continue
        inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        links = {name: value for name, value in inputs.items() if isinstance(value, list)}
        kept = {name: value for name, value in inputs.items()
                if isinstance(value, list) or not is_randomised_input(name, value)}
        shape.append([str(node_id), node.get("class_type"), links])
        exact.append([str(node_id), node.get("class_type"), kept])
    return f"{_hash(shape)[:12]}-{_hash(exact)[:20]}"


def signature_family(signature: str) -> str | None:
    """The family part of a signature made by workflow_signature (None for other strings)."""
    family, sep, _ = signature.partition("-")
    return family if sep else None


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Avg:
    """Exponentially weighted average of log run time on one worker for one signature."""

    log_time: float
    count: int = 1


class CostModel:
    """Online estimates of workflow cost (seconds at speed 1.0) and relative worker speed."""

    def __init__(self, alpha: float = 0.3, speed_alpha: float = 0.25, prior_weight: float = 2.0,
                 max_signatures: int = 5000, fallback_cost: float = 10.0, family_alpha: float = 0.1):
        self.alpha = alpha
        self.speed_alpha = speed_alpha
        self.prior_weight = prior_weight
        self.max_signatures = max_signatures
        self.fallback_cost = fallback_cost
        self.family_alpha = family_alpha
        self._runs: OrderedDict[str, dict[Any, _Avg]] = OrderedDict()  # least recently used first
        self._families: OrderedDict[str, dict[Any, _Avg]] = OrderedDict()
        self._log_speed: dict[Any, float] = {}  # raw scale: normalised on read
        self._comparisons: dict[Any, float] = {}
        self._observations: dict[Any, int] = {}
        self._last_seen: dict[Any, float] = {}
        self._log_speed_sum = 0.0
        self._mean_raw_cost: float | None = None  # EWMA of t * raw speed

    def record(self, signature: str, worker_id: Any, run_seconds: float, now: float) -> None:
        """Learn from one run of ``signature`` on ``worker_id`` that took ``run_seconds`` (start to end)."""
        if not isinstance(run_seconds, (int, float)) or not math.isfinite(run_seconds) or run_seconds < 0:
            return
        log_t = math.log(max(run_seconds, MIN_SECONDS))
        if worker_id not in self._log_speed:
            self._log_speed[worker_id] = 0.0
        self._observations[worker_id] = self._observations.get(worker_id, 0) + 1
        self._last_seen[worker_id] = now
        runs = self._average(self._runs, signature, worker_id, log_t, self.alpha)
        family = signature_family(signature)
        fam_runs = self._average(self._families, family, worker_id, log_t, self.family_alpha) if family else None
        if not self._update_speed(worker_id, runs, 1.0) and fam_runs is not None:
            self._update_speed(worker_id, fam_runs, 0.5)
        raw_cost = math.exp(log_t + self._log_speed[worker_id])
        if self._mean_raw_cost is None:
            self._mean_raw_cost = raw_cost
        else:
            self._mean_raw_cost += 0.1 * (raw_cost - self._mean_raw_cost)

    def _average(self, table: OrderedDict, key: str, worker_id: Any, log_t: float,
                 alpha: float) -> dict[Any, _Avg]:
        runs = table.get(key)
        if runs is None:
            runs = table[key] = {}
            if len(table) > self.max_signatures:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        avg = runs.get(worker_id)
        if avg is None:
            runs[worker_id] = _Avg(log_t)
        else:
            avg.log_time += max(alpha, 1.0 / (avg.count + 1)) * (log_t - avg.log_time)
            avg.count += 1
        return runs

    def _update_speed(self, worker_id: Any, runs: dict[Any, _Avg], weight: float) -> bool:
        """Move the observing worker towards its peers on these runs, and each peer towards it."""
        mine = runs[worker_id].log_time
        peers = [(u, avg.log_time) for u, avg in runs.items() if u != worker_id and u in self._log_speed]
        if not peers:
            return False
        lv_w = self._log_speed[worker_id]
        target = sum(self._log_speed[u] + log_t - mine for u, log_t in peers) / len(peers)
        self._nudge(worker_id, target, weight)
        for u, log_t in peers:
            self._nudge(u, lv_w + mine - log_t, weight / len(peers))
        return True

    def _nudge(self, worker_id: Any, target: float, weight: float = 1.0) -> None:
        n = self._comparisons.get(worker_id, 0) + weight
        self._comparisons[worker_id] = n
        step = weight * max(self.speed_alpha, 1.0 / (n + self.prior_weight))
        delta = step * (target - self._log_speed[worker_id])
        self._log_speed[worker_id] += delta
        self._log_speed_sum += delta

    def _mean_log_speed(self) -> float:
        return self._log_speed_sum / len(self._log_speed) if self._log_speed else 0.0

    def worker_speed(self, worker_id: Any) -> float:
        """Relative speed of a worker (1.0 = the cluster's typical worker, also the default)."""
        raw = self._log_speed.get(worker_id)
        return 1.0 if raw is None else math.exp(raw - self._mean_log_speed())

    def estimate_cost(self, signature: str) -> float | None:
        """Expected run seconds of a workflow at speed 1.0 (its family's when new), or None if unknown."""
        family = signature_family(signature)
        for table, key in ((self._runs, signature), (self._families, family)):
            runs = table.get(key) if key else None
            logs = [avg.log_time + self._log_speed[u] for u, avg in (runs or {}).items() if u in self._log_speed]
            if logs:
                return math.exp(sum(logs) / len(logs) - self._mean_log_speed())
        return None

    def estimate_seconds(self, signature: str, worker_id: Any) -> float:
        """Expected run seconds of a workflow on one worker (default cost when unknown)."""
        cost = self.estimate_cost(signature)
        return (self.default_cost() if cost is None else cost) / self.worker_speed(worker_id)

    def default_cost(self) -> float:
        """Average cost of recent jobs at speed 1.0 (``fallback_cost`` before any observation)."""
        if self._mean_raw_cost is None:
            return self.fallback_cost
        return self._mean_raw_cost / math.exp(self._mean_log_speed())

    def forget_worker(self, worker_id: Any) -> None:
        """Drop a deleted worker's speed (its past runs stay in the cost averages until they age out)."""
        raw = self._log_speed.pop(worker_id, None)
        if raw is not None:
            self._log_speed_sum -= raw
        for table in (self._comparisons, self._observations, self._last_seen):
            table.pop(worker_id, None)

    def snapshot(self) -> dict:
        """Per-worker speed, observation count and last observation time (for the admin page/metrics)."""
        return {w: {"speed": round(self.worker_speed(w), 4), "observations": self._observations.get(w, 0),
                    "last_seen": self._last_seen.get(w)} for w in self._log_speed}
