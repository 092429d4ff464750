"""Keeps Python's cyclic garbage collector from walking a deep queue of waiting jobs over and over.

A waiting job is a handful of long-lived objects (its record, its parsed workflow while it is not
packed, index entries). CPython's full collection walks every tracked object, and it runs each time the
long-lived objects grew by a quarter: with 100,000 waiting jobs every such pass stalled the event loop
for hundreds of milliseconds, which every request felt (the status and /healthz p99 of bench/scale.py).

So, as jobs arrive, what has been built so far is moved to the permanent generation (``gc.freeze()``,
which costs nothing in itself) every ``FREEZE_EVERY`` new jobs: the collector then only ever walks
what is young. Frozen objects are still freed by reference counting as soon as a job ends; only
garbage *cycles* among them wait. When the queue has drained again (few active jobs) and much was
frozen, everything is unfrozen and collected once, at most once per ``UNFREEZE_INTERVAL``.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Callable

logger = logging.getLogger(__name__)

FREEZE_EVERY = 1_000  # new jobs between two freezes
UNFREEZE_BELOW = 1_000  # active jobs under which a drained queue is collected
UNFREEZE_AFTER = 20_000  # jobs frozen since the last collection before one is worth it
UNFREEZE_INTERVAL = 60.0  # seconds: at most one such collection per minute


class LongLivedJobs:
    """Call :meth:`job_added` for each accepted job and :meth:`job_ended` for each that ends."""

    def __init__(self, active_count: Callable[[], int], clock: Callable[[], float] = time.monotonic):
        self._active_count = active_count
        self._clock = clock
        self._since_freeze = 0
        self._frozen_since_collect = 0
        self._last_collect = clock()
        self.freezes = 0
        self.collections = 0

    def job_added(self) -> None:
        """A job was accepted (or loaded): freeze once enough new ones have been built."""
        self._since_freeze += 1
        if self._since_freeze >= FREEZE_EVERY:
            gc.freeze()
            self._frozen_since_collect += self._since_freeze
            self._since_freeze = 0
            self.freezes += 1

    def job_ended(self) -> None:
        """A job ended: once the queue has drained, give frozen garbage cycles back."""
        if self._frozen_since_collect < UNFREEZE_AFTER or self._active_count() >= UNFREEZE_BELOW:
            return
        now = self._clock()
        if now - self._last_collect < UNFREEZE_INTERVAL:
            return
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()  # what survived is long-lived again (the process's own structures)
        self._frozen_since_collect = 0
        self._last_collect = now
        self.collections += 1
        logger.info("collected %d unreachable objects after the queue drained (%.0f ms)",
                    found, (time.perf_counter() - started) * 1000)
