"""A service that runs one coroutine loop in the background, with start and stop."""

from __future__ import annotations

import asyncio


class BackgroundLoop:
    """Subclasses implement `_loop()`; `start()` runs it as a task, `stop()` cancels and waits for it."""

    _task: asyncio.Task | None = None

    def start(self) -> None:
        """Begin the loop in the background."""
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        raise NotImplementedError
