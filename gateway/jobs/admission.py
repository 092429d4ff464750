"""Queue limits: how many unfinished jobs the cluster, and each API key, may have at once (429 beyond)."""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from ..errors import ComfyError

RETRY_AFTER_SECONDS = 5


def key_id(key: str | None) -> str | None:
    """A short fingerprint of an API key (the key itself is never kept)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else None


class Admission:
    """Counts unfinished jobs per API key (from the job listener) and refuses what is over a limit."""

    def __init__(self, jobs, settings: Callable[[], Any]):
        self.jobs = jobs
        self._settings = settings
        self._by_key: dict[str, set[str]] = {}
        self._key_of: dict[str, str] = {}
        jobs.add_listener(self._on_job)

    def check(self, key: str | None) -> None:
        """ComfyError 429 (ComfyUI's error shape, with Retry-After) when a limit is reached."""
        settings = self._settings()
        if settings.max_queued and len(self.jobs.active) >= settings.max_queued:
            raise _queue_full(f"the cluster holds {len(self.jobs.active)} unfinished jobs, its limit "
                              f"(max_queued = {settings.max_queued})")
        fingerprint = key_id(key)
        if settings.api_keys and settings.max_queued_per_key and fingerprint:
            held = len(self._by_key.get(fingerprint, ()))
            if held >= settings.max_queued_per_key:
                raise _queue_full(f"this API key has {held} unfinished jobs, its limit "
                                  f"(max_queued_per_key = {settings.max_queued_per_key})")

    def track(self, prompt_id: str, key: str | None) -> None:
        """Count an accepted job against its key (until it finishes)."""
        fingerprint = key_id(key)
        job = self.jobs.active.get(prompt_id)
        if fingerprint and job is not None:
            self._by_key.setdefault(fingerprint, set()).add(prompt_id)
            self._key_of[prompt_id] = fingerprint

    def _on_job(self, job, event: str) -> None:
        if event == "finished":
            fingerprint = self._key_of.pop(job.prompt_id, None)
            held = self._by_key.get(fingerprint) if fingerprint else None
            if held is not None:
                held.discard(job.prompt_id)
                if not held:
                    del self._by_key[fingerprint]


def _queue_full(message: str) -> ComfyError:
    return ComfyError(429, {"error": {"type": "queue_full", "message": message,
                                      "details": f"try again in {RETRY_AFTER_SECONDS} s",
                                      "extra_info": {}}, "node_errors": {}},
                      headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
