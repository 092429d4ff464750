"""The editor's static files, relayed from one online worker, with a small memory cache.

All files of the editor come from one worker at a time (the "source"), kept while it stays online, so
one page load never mixes two frontend versions; when it goes away the next online worker takes over.
Only the file's path goes to the worker, with the conditional and range headers of the request:
never the client's cookies, Authorization (the gateway's API key) or Origin. Redirects are never
followed nor passed on. Answers are streamed, never held whole, except that complete 200 answers up to
``MAX_ENTRY`` bytes are kept in a least-recently-used cache of ``cache_bytes`` (per worker and path),
so a page load by the next user, and the browser's revalidations, cost the worker nothing.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from tornado.httputil import HTTPHeaders

from ..errors import NO_WORKER_ONLINE, WorkerBadAnswer, WorkerUnavailable

logger = logging.getLogger(__name__)

PASSED_HEADERS = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Cache-Control",
                  "ETag", "Last-Modified", "Vary")
FORWARDED_HEADERS = ("If-None-Match", "If-Modified-Since", "Range", "If-Range")
MAX_ENTRY = 16 * 1024 * 1024  # bigger files are streamed every time
HASHED_TTL = 3600.0  # assets/ names carry a content hash: they never change under one name
OTHER_TTL = 30.0
PACK_PATHS = ("/extensions/", "/api/workflow_templates/")  # files of custom node packs  # index.html, extensions, templates: a worker's upgrade shows within this time


@dataclass
class Entry:
    """One cached answer."""

    headers: dict
    body: bytes
    stored_at: float


class Sink:
    """Where an answer goes: the handler implements begin() and chunk()."""

    def begin(self, status: int, headers: dict) -> None:  # pragma: no cover - interface
        """The status line and the headers to send."""
        raise NotImplementedError

    async def chunk(self, data: bytes) -> None:  # pragma: no cover - interface
        """Part of the body (awaited, for back-pressure)."""
        raise NotImplementedError


class StaticFiles:
    """Picks the source worker and relays its files."""

    def __init__(self, registry, cache_bytes: Callable[[], int]):
        self.registry = registry
        self.cache_bytes = cache_bytes
        self.source_id: int | None = None
        self._cache: OrderedDict[tuple, Entry] = OrderedDict()
        self._cached_bytes = 0

    def source(self):
        """The worker the editor's files come from; WorkerUnavailable when none is online."""
        current = self.registry.get(self.source_id) if self.source_id is not None else None
        if current is not None and current.status == "online":
            return current
        online = [w for w in self.registry.all() if w.status == "online"]
        if not online:
            raise WorkerUnavailable(NO_WORKER_ONLINE)
        chosen = min(online, key=lambda w: (w.queue_remaining, w.id))
        if self.source_id != chosen.id:
            logger.info("the editor's files now come from worker %s", chosen.name)
        self.source_id = chosen.id
        return chosen

    def candidates(self, path: str) -> list:
        """Workers to ask for path: the source; for a custom node pack's files also the others, since
        packs may be installed on some workers only."""
        source = self.source()
        if not path.startswith(PACK_PATHS):
            return [source]
        others = sorted((w for w in self.registry.all() if w.status == "online" and w.id != source.id),
                        key=lambda w: w.id)
        return [source, *others]

    async def serve(self, path: str, request_headers: dict, sink: Sink, head: bool = False) -> None:
        """Send the worker's answer for path (e.g. "/", "/assets/x.js") to the sink."""
        forwarded = {h: request_headers[h] for h in FORWARDED_HEADERS if h in request_headers}
        workers = self.candidates(path)
        for index, worker in enumerate(workers):
            entry = self._fresh((worker.id, path), path)
            if entry is not None and "Range" not in forwarded:
                await self._answer_from_cache(entry, forwarded, sink, head)
                return
            if await self._relay(worker, path, forwarded, sink, head, last=index == len(workers) - 1):
                return

    async def _relay(self, worker, path: str, forwarded: dict, sink: Sink, head: bool, last: bool) -> bool:
        """Relay one worker's answer; False (nothing sent) when it is a 404 and another worker may have it."""
        state: dict = {"refused": None, "keep": None, "chunks": [], "size": 0, "skip": False}

        def on_headers(status: int, headers: HTTPHeaders) -> None:
            if status == 404 and not last:
                state["skip"] = True
                return
            if 300 <= status < 400 and status != 304:
                state["refused"] = WorkerBadAnswer(f"worker {worker.name} answered {path} with a redirect "
                                                   f"({status}); the gateway does not follow it")
                return
            if status == 401:
                state["refused"] = WorkerBadAnswer(f"worker {worker.name} refused the gateway's credentials (401)",
                                                   type="worker_auth_failed")
                return
            passed = {name: headers[name] for name in PASSED_HEADERS if name in headers}
            length = headers.get("Content-Length")
            if status == 200 and not head and "Range" not in forwarded and length is not None \
                    and int(length) <= min(MAX_ENTRY, self.cache_bytes() // 4):
                state["keep"] = passed  # small enough: remember the answer while relaying it
            sink.begin(status, passed)

        async def on_chunk(data: bytes) -> None:
            if state["refused"] is not None or state["skip"]:
                return
            if state["keep"] is not None:
                state["chunks"].append(data)
                state["size"] += len(data)
            await sink.chunk(data)

        await worker.client.stream("HEAD" if head else "GET", path, query=None, headers=forwarded,
                                   on_headers=on_headers, on_chunk=on_chunk)
        if state["skip"]:
            return False
        if state["refused"] is not None:
            raise state["refused"]
        kept = state["keep"]
        if kept is not None and state["size"] == int(kept["Content-Length"]):
            self._store((worker.id, path), Entry(kept, b"".join(state["chunks"]), time.monotonic()))
        return True

    # ----- the cache ---------------------------------------------------------------------------------
    def _fresh(self, key: tuple, path: str) -> Entry | None:
        self._trim(self.cache_bytes())  # the limit may have been lowered at run time
        entry = self._cache.get(key)
        if entry is None:
            return None
        ttl = HASHED_TTL if path.startswith("/assets/") else OTHER_TTL
        if time.monotonic() - entry.stored_at > ttl:
            self._drop(key)
            return None
        self._cache.move_to_end(key)
        return entry

    @staticmethod
    async def _answer_from_cache(entry: Entry, forwarded: dict, sink: Sink, head: bool) -> None:
        etag = entry.headers.get("ETag")
        if etag and etag in [t.strip() for t in forwarded.get("If-None-Match", "").split(",")]:
            sink.begin(304, {k: v for k, v in entry.headers.items() if k not in ("Content-Length", "Content-Type")})
            return
        sink.begin(200, dict(entry.headers))
        if not head:
            await sink.chunk(entry.body)

    def _store(self, key: tuple, entry: Entry) -> None:
        limit = self.cache_bytes()
        if limit <= 0 or len(entry.body) > limit // 4:
            return
        self._drop(key)
        self._cache[key] = entry
        self._cached_bytes += len(entry.body)
        self._trim(limit)

    def _trim(self, limit: int) -> None:
        while self._cached_bytes > max(0, limit) and self._cache:
            self._drop(next(iter(self._cache)))  # the least recently used first

    def _drop(self, key: tuple) -> None:
        entry = self._cache.pop(key, None)
        if entry is not None:
            self._cached_bytes -= len(entry.body)

    def cache_stats(self) -> dict:
        """Entries and bytes in the cache (for tests and the benchmark)."""
        return {"entries": len(self._cache), "bytes": self._cached_bytes}
