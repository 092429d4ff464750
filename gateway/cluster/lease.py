"""The dispatcher lease: which instance of a cluster sends jobs to workers, and for how long it may.

A row in the store (``gateway_lease``) names the holder, a fencing epoch that grows with every new
holder, and an expiry in the database's own clock. The holder renews it every ``ttl / 5`` seconds; the
others try to take it every ``POLL_SECONDS`` and succeed only once it has expired. The holder keeps a
local deadline on the monotonic clock (when its last successful renewal started, plus ``ttl``): the
database's expiry is never earlier, so the holder stops before anyone else can start. ``may_send()``
checks that deadline right before each send, and every dispatcher write names the epoch (the store
refuses it once another epoch holds the lease), so a holder that was paused or cut off and wakes up
sends and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from ..background import BackgroundLoop

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25  # how often a follower looks whether the lease has expired
RENEWALS_PER_TTL = 5


class DispatcherLease(BackgroundLoop):
    """Takes, renews and gives up the dispatcher lease; calls on_gain(epoch) / on_lose(reason)."""

    def __init__(self, store, holder: str, holder_name: str, ttl: Callable[[], float], exclusive: bool,
                 on_gain: Callable[[int], Awaitable[None]], on_lose: Callable[[str], None]):
        self._store = store
        self.holder = holder
        self.holder_name = holder_name
        self._ttl = ttl
        self._exclusive = exclusive  # one process per store (SQLite's file lock): take it at once
        self._on_gain = on_gain
        self._on_lose = on_lose
        self.epoch: int | None = None
        self._deadline = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._gaining: asyncio.Task | None = None
        self.last_seen: dict | None = None  # the lease row as last read (holder, epoch, expiry)

    @property
    def held(self) -> bool:
        """True while this instance holds the lease and its local deadline has not passed."""
        return self.epoch is not None and time.monotonic() < self._deadline

    def may_send(self) -> bool:
        """Checked right before a job goes to a worker: the lease is ours and not about to lapse."""
        return self.held

    def seconds_left(self) -> float:
        """Seconds until the local deadline (0 when not held)."""
        return max(0.0, self._deadline - time.monotonic()) if self.epoch is not None else 0.0

    async def take_now(self) -> None:
        """Take the lease unconditionally and wait for the takeover (one process per store: SQLite)."""
        ttl = self._ttl()
        started = time.monotonic()
        row = await self._store.acquire_lease(self.holder, self.holder_name, ttl, force=True)
        self.last_seen = row
        self.epoch = row["epoch"]
        self._extend(started, ttl)
        await self._on_gain(self.epoch)

    async def _loop(self) -> None:
        while True:
            ttl = self._ttl()
            try:
                if self.epoch is None:
                    await self._try_acquire(ttl)  # (exclusive: always succeeds, after a lapse too)
                else:
                    await self._renew(ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is unreachable: a holder keeps trying until its deadline
                logger.warning("dispatcher lease: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(ttl / RENEWALS_PER_TTL if self.epoch is not None else POLL_SECONDS)

    async def _try_acquire(self, ttl: float) -> None:
        started = time.monotonic()
        row = await self._store.acquire_lease(self.holder, self.holder_name, ttl, force=self._exclusive)
        self.last_seen = row
        if not row["held"]:
            return
        self.epoch = row["epoch"]
        self._extend(started, ttl)
        logger.info("dispatcher lease taken (epoch %d)", self.epoch)
        self._gaining = asyncio.ensure_future(self._gain(self.epoch))

    async def _gain(self, epoch: int) -> None:
        try:
            await self._on_gain(epoch)
        except Exception:
            logger.exception("taking over as dispatcher failed; giving the lease up")
            await self.release()

    async def _renew(self, ttl: float) -> None:
        epoch = self.epoch
        started = time.monotonic()
        if await self._store.renew_lease(self.holder, epoch, ttl):
            if self.epoch == epoch:
                self._extend(started, ttl)
        elif self.epoch == epoch:
            self._lose("the store says another instance holds it")

    def _extend(self, started: float, ttl: float) -> None:
        if self._exclusive:
            # One process per store (SQLite's file lock): nobody can take the lease over, so it never
            # lapses here, not even while a long start-up keeps the loop from renewing it.
            self._deadline = float("inf")
            return
        self._deadline = started + ttl
        if self._watchdog is not None:
            self._watchdog.cancel()
        loop = asyncio.get_running_loop()
        # Fires even while a renewal hangs on an unreachable store: the lease ends locally on time.
        self._watchdog = loop.call_at(loop.time() + max(0.0, self._deadline - time.monotonic()), self._expired)

    def _expired(self) -> None:
        self._watchdog = None
        if self.epoch is not None and time.monotonic() >= self._deadline:
            self._lose("it was not renewed in time")

    def _lose(self, reason: str) -> None:
        if self.epoch is None:
            return
        level = logging.INFO if reason == "released" else logging.WARNING
        logger.log(level, "dispatcher lease given up (epoch %d): %s", self.epoch, reason)
        self.epoch = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._gaining is not None and not self._gaining.done():
            self._gaining.cancel()
        self._on_lose(reason)

    def fenced(self, epoch: int) -> None:
        """A store write of this epoch was refused: the lease is gone even if the timer says otherwise."""
        if self.epoch == epoch:
            self._lose("a write was refused by the store (another epoch holds the lease)")

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so another instance takes over without waiting."""
        epoch = self.epoch
        if epoch is None:
            return
        self._lose("released")
        try:
            await self._store.release_lease(self.holder, epoch)
        except Exception as exc:
            logger.warning("could not release the dispatcher lease: %s", exc)

    async def stop(self) -> None:
        """Stop taking or renewing the lease (release() first to hand it over at once)."""
        await super().stop()
        if self._gaining is not None and not self._gaining.done():
            self._gaining.cancel()
            await asyncio.gather(self._gaining, return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
