"""The gateway's own queue: jobs waiting for a worker, kept in dispatch order as it changes."""

from __future__ import annotations

from typing import Iterator

from sortedcontainers import SortedKeyList

from .model import Job


def dispatch_key(job: Job) -> tuple:
    """Priority (bigger first), then ComfyUI number (arrival order when none), then arrival, then id.

    The same order as :meth:`gateway.scheduling.scheduler.Scheduler.sort_key`, read from the job itself.
    """
    number = float(job.seq) if job.number is None else float(job.number)
    return (-job.priority, number, job.seq, job.prompt_id)


class WaitingQueue:
    """Waiting jobs in dispatch order: add, remove and position in O(log n), ordered iteration.

    Sorting the whole queue on every scheduling round (and every /queue or status read) grew with the
    queue: at 100,000 waiting jobs each sort took a large part of a submit's time. The key of a job is
    taken when it is added; whoever changes a waiting job's priority, number or seq calls
    :meth:`rekey` (the job service does, in one place).
    """

    def __init__(self) -> None:
        self._jobs: SortedKeyList = SortedKeyList(key=lambda entry: entry[0])
        self._keys: dict[str, tuple] = {}  # prompt id -> the key it was added with
        self.version = 0  # bumped on every change, so readers can reuse what they built from it

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, job: Job) -> bool:
        return job.prompt_id in self._keys

    def __iter__(self) -> Iterator[Job]:
        """The jobs in dispatch order (do not change the queue while iterating)."""
        return (entry[1] for entry in self._jobs)

    def add(self, job: Job) -> None:
        """Put a job in its place (no-op when it is already in)."""
        if job.prompt_id in self._keys:
            return
        key = dispatch_key(job)
        self._keys[job.prompt_id] = key
        self._jobs.add((key, job))
        self.version += 1

    def discard(self, job: Job) -> None:
        """Take a job out (no-op when it is not in)."""
        key = self._keys.pop(job.prompt_id, None)
        if key is None:
            return
        index = self._jobs.bisect_key_left(key)
        # Keys are unique (they end with the prompt id), so the entry is right there.
        del self._jobs[index]
        self.version += 1

    def rekey(self, job: Job) -> None:
        """Move a waiting job after its priority, number or seq changed."""
        if job.prompt_id in self._keys:
            self.discard(job)
            self.add(job)

    def position(self, job: Job) -> int | None:
        """0-based index in dispatch order, or None when the job is not waiting."""
        key = self._keys.get(job.prompt_id)
        return None if key is None else self._jobs.bisect_key_left(key)

    def jobs(self) -> list[Job]:
        """Every waiting job, in dispatch order."""
        return [entry[1] for entry in self._jobs]

    def clear(self) -> None:
        """Forget every job."""
        self._jobs.clear()
        self._keys.clear()
        self.version += 1
