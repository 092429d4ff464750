"""A worker's live state (health, load, node list) as other gateway instances and later starts see it.

The dispatcher checks the workers; what it sees is written to the store (``worker_status``) and sent to
the other instances, which apply it to their own registry. A worker's /object_info is stored once per
content hash, so an instance (or the next start) knows what each worker can run even while it is
offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time

from ..scheduling.capabilities import Capabilities

logger = logging.getLogger(__name__)

LIVE_FIELDS = ("status", "failures", "queue_remaining", "devices", "system", "last_error", "latency_ms",
               "last_check", "last_seen", "monitor_connected")


def status_of(worker) -> dict:
    """The live state of a worker as stored and sent to other instances."""
    out = {name: getattr(worker, name) for name in LIVE_FIELDS}
    out["running"] = list(worker.running_prompt_ids)
    out["pending"] = list(worker.pending_prompt_ids)
    return out


def apply_status(worker, status: dict) -> str:
    """Take over the live state another instance saw; the registry event it means."""
    was = worker.status
    for name in LIVE_FIELDS:
        if name in status:
            setattr(worker, name, status[name])
    worker.running_prompt_ids = tuple(str(p) for p in status.get("running") or ())
    worker.pending_prompt_ids = tuple(str(p) for p in status.get("pending") or ())
    if worker.status != was and worker.status in ("online", "offline"):
        return worker.status
    return "health"


def digest_of(info: dict) -> tuple[str, str]:
    """(sha256, canonical JSON text) of an /object_info."""
    text = json.dumps(info, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest(), text


async def remember_object_info(store, worker, info: dict) -> None:
    """Store a worker's /object_info (once per content), note its hash on the worker, and write the
    worker's status row naming it (what a restart or another instance reads)."""
    loop = asyncio.get_running_loop()
    digest, text = await loop.run_in_executor(None, digest_of, info)
    if digest != worker.object_info_hash:
        await store.put_object_info(digest, text, time.time())
        worker.object_info_hash = digest
        await store.put_worker_status([{"worker_id": worker.id, "status": status_of(worker),
                                        "object_info_hash": digest, "updated_at": time.time()}])


async def adopt_object_info(store, worker, digest: str | None) -> bool:
    """Load a stored /object_info by hash into a worker's capabilities; True when it changed."""
    if not digest or digest == worker.object_info_hash:
        return False
    text = await store.get_object_info(digest)
    if text is None:
        return False
    loop = asyncio.get_running_loop()
    try:
        info = await loop.run_in_executor(None, json.loads, text)
        capabilities = Capabilities.from_object_info(info)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        logger.warning("worker %s: stored node list unreadable: %s", worker.name, exc)
        return False
    worker.object_info, worker.capabilities, worker.object_info_hash = info, capabilities, digest
    return True
