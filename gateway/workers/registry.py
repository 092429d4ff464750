"""Worker registry: the workers' configuration (persisted) and live health (in memory)."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import BadRequest, Conflict, NotFound
from ..scheduling.capabilities import Capabilities
from .client import WorkerClient

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("url", "name", "weight", "enabled", "draining", "max_queue", "auth_username", "auth_password")


@dataclass
class Worker:
    """One ComfyUI server: stored configuration plus what the gateway last saw of it."""

    id: int
    url: str
    name: str
    weight: float = 1.0
    enabled: bool = True
    draining: bool = False
    max_queue: int = 1
    auth_username: str | None = None
    auth_password: str | None = None
    created_at: float = 0.0
    # Live state, never persisted.
    status: str = "unknown"  # unknown | online | offline
    failures: int = 0
    queue_remaining: int = 0
    running_prompt_ids: tuple[str, ...] = ()
    pending_prompt_ids: tuple[str, ...] = ()
    sent_since_report: int = 0
    reports: int = 0  # status events heard so far (the worker sends one on every change of its queue)
    devices: list = field(default_factory=list)
    system: dict = field(default_factory=dict)
    last_error: str | None = None
    latency_ms: float | None = None
    last_check: float | None = None
    last_seen: float | None = None
    online_since: float | None = None  # when its health checks last turned it online (uptime as the gateway sees it)
    object_info: dict | None = None
    capabilities: Capabilities | None = None
    monitor_connected: bool = False
    queue_snapshot: tuple | None = None  # (time, raw /queue answer) from the last health check
    client: WorkerClient | None = None
    object_info_hash: str | None = None  # sha256 of its /object_info as stored (shared with other instances)
    updated_at: float = 0.0  # when its configuration was last written
    status_synced_at: float | None = None  # replicas: the dispatcher's time of the live state applied here

    @property
    def state(self) -> str:
        """online, offline, disabled or draining (what the scheduler and the admin page see)."""
        if not self.enabled:
            return "disabled"
        if self.status != "online":
            return "offline"
        return "draining" if self.draining else "online"

    @property
    def vram(self) -> tuple[int | None, int | None]:
        """(total, free) bytes of the first device, when known."""
        if not self.devices:
            return None, None
        first = self.devices[0]
        return first.get("vram_total"), first.get("vram_free")

    def config_dict(self) -> dict:
        """The persisted fields."""
        return {name: getattr(self, name) for name in EDITABLE_FIELDS}

    def public_dict(self) -> dict:
        """The worker as the API shows it: never the password."""
        vram_total, vram_free = self.vram
        return {
            "id": self.id, "name": self.name, "url": self.url, "weight": self.weight,
            "enabled": self.enabled, "draining": self.draining, "max_queue": self.max_queue,
            "auth_username": self.auth_username, "auth_password_set": bool(self.auth_password),
            "state": self.state, "status": self.status, "queue_remaining": self.queue_remaining,
            "running": list(self.running_prompt_ids), "devices": self.devices,
            "vram_total": vram_total, "vram_free": vram_free,
            "vram_used": (vram_total - vram_free) if vram_total is not None and vram_free is not None else None,
            "last_error": self.last_error, "latency_ms": self.latency_ms,
            "last_check": self.last_check, "last_seen": self.last_seen, "online_since": self.online_since,
            "node_types": len(self.capabilities.node_types) if self.capabilities else None,
            "monitor_connected": self.monitor_connected, "created_at": self.created_at,
            "comfyui_version": self.system.get("comfyui_version"),
        }


_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
                        r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$")


def _valid_host(hostname: str) -> bool:
    """A DNS name or an IP address (no spaces, no stray characters)."""
    try:
        ipaddress.ip_address(hostname)
        return True
    except ValueError:
        return bool(_HOST_NAME.match(hostname))


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a worker URL: the origin its credentials belong to."""
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def normalize_url(raw: Any) -> tuple[str, str | None, str | None]:
    """Validate a worker URL; returns (url without credentials, user, password) or raises BadRequest."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("field 'url' is required, e.g. http://127.0.0.1:8188", extra={"field": "url"})
    text = raw.strip()
    if len(text) > 512 or not text.isprintable() or any(c.isspace() for c in text):
        raise BadRequest("field 'url' must be a URL without spaces, e.g. http://127.0.0.1:8188",
                         extra={"field": "url"})
    if not text.isascii():
        raise BadRequest("field 'url' must be ASCII (percent-encode other characters, use the punycode of a "
                         "host name)", extra={"field": "url"})
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise BadRequest(f"field 'url' must use http or https, got {parts.scheme!r}", extra={"field": "url"})
    if not parts.hostname:
        raise BadRequest("field 'url' has no host name", extra={"field": "url"})
    if not _valid_host(parts.hostname):
        raise BadRequest(f"field 'url' has an invalid host name {parts.hostname!r}", extra={"field": "url"})
    try:
        port = parts.port
    except ValueError:
        raise BadRequest("field 'url' has an invalid port", extra={"field": "url"}) from None
    if port == 0:
        raise BadRequest("field 'url' has an invalid port 0", extra={"field": "url"})
    if parts.query or parts.fragment:
        raise BadRequest("field 'url' must not have a query or fragment", extra={"field": "url"})
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{port}" if port else "")
    url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return url, user, password


def _parse_fields(body: dict, partial: bool) -> dict:
    """Check the editable fields of a POST/PATCH body; BadRequest names the bad field."""
    unknown = set(body) - set(EDITABLE_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}", extra={"field": sorted(unknown)[0]})
    out: dict[str, Any] = {}
    if "url" in body or not partial:
        url, user, password = normalize_url(body.get("url"))
        out["url"] = url
        if user and not body.get("auth_username"):
            out["auth_username"], out["auth_password"] = user, password
    if "name" in body:
        if not isinstance(body["name"], str) or len(body["name"]) > 128:
            raise BadRequest("field 'name' must be a string of at most 128 characters", extra={"field": "name"})
        out["name"] = body["name"].strip()
    if "weight" in body:
        weight = body["weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1000:
            raise BadRequest("field 'weight' must be a number greater than 0 (at most 1000)",
                             extra={"field": "weight"})
        out["weight"] = float(weight)
    if "max_queue" in body:
        max_queue = body["max_queue"]
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or not 1 <= max_queue <= 1000:
            raise BadRequest("field 'max_queue' must be an integer from 1 to 1000", extra={"field": "max_queue"})
        out["max_queue"] = max_queue
    for flag in ("enabled", "draining"):
        if flag in body:
            if not isinstance(body[flag], bool):
                raise BadRequest(f"field '{flag}' must be true or false", extra={"field": flag})
            out[flag] = body[flag]
    for text in ("auth_username", "auth_password"):
        if text in body:
            value = body[text]
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"field '{text}' must be a string or null", extra={"field": text})
            out[text] = value or None
    return out


class WorkerRegistry:
    """Owns the set of workers: CRUD through the store, live state in memory, change listeners."""

    def __init__(self, store, make_client: Callable[[Worker], WorkerClient], default_max_queue: Callable[[], int]):
        self._store = store
        self._make_client = make_client
        self._default_max_queue = default_max_queue
        self._workers: dict[int, Worker] = {}
        self._listed: tuple[Worker, ...] | None = None  # snapshot() until a worker is added or removed
        self._listeners: list[Callable[[Worker, str], None]] = []
        self.version = 0  # bumped on every change of any worker's state or configuration
        self.applying_remote = False  # True while listeners hear a change another instance made

    def add_listener(self, callback: Callable[[Worker, str], None]) -> None:
        """Call callback(worker, event) on added/updated/deleted/online/offline/status events."""
        self._listeners.append(callback)

    def notify(self, worker: Worker, event: str) -> None:
        """Tell listeners that a worker changed."""
        if event != "health":
            self.version += 1
        for callback in list(self._listeners):
            try:
                callback(worker, event)
            except Exception:  # a listener's bug must not stop the others
                logger.exception("worker listener failed on %s", event)

    def notify_remote(self, worker: Worker, event: str) -> None:
        """Tell listeners about a change another instance made (they do not pass it on again)."""
        self.applying_remote = True
        try:
            self.notify(worker, event)
        finally:
            self.applying_remote = False

    def all(self) -> list[Worker]:
        """Every worker, in id order (a new list)."""
        return list(self.snapshot())

    def snapshot(self) -> tuple[Worker, ...]:
        """Every worker, in id order, as a tuple kept until a worker is added or removed (every
        submission and every planning round reads it)."""
        if self._listed is None:
            self._listed = tuple(self._workers[key] for key in sorted(self._workers))
        return self._listed

    def get(self, worker_id: int) -> Worker | None:
        """The worker with that id, or None."""
        return self._workers.get(worker_id)

    def require(self, worker_id: Any) -> Worker:
        """The worker with that id, or NotFound."""
        try:
            worker = self._workers.get(int(worker_id))
        except (TypeError, ValueError):
            worker = None
        if worker is None:
            raise NotFound(f"worker {worker_id} does not exist")
        return worker

    def _build(self, row: dict) -> Worker:
        worker = Worker(**{key: row[key] for key in ("id", "created_at", "updated_at", *EDITABLE_FIELDS)
                           if key in row})
        worker.client = self._make_client(worker)
        return worker

    def sync_rows(self, rows: list[dict]) -> bool:
        """Bring the workers in memory in line with the stored ones (changes another instance made).

        Listeners hear "added", "reconnect"/"updated" and "deleted" as for local changes, with
        ``applying_remote`` set. Returns True when anything changed.
        """
        changed = False
        stored = {row["id"]: row for row in rows}
        self.applying_remote = True
        try:
            for worker_id in [w for w in self._workers if w not in stored]:
                worker = self._workers.pop(worker_id)
                self._listed = None
                logger.info("worker %s removed on another instance", worker.name)
                self.notify(worker, "deleted")
                changed = True
            for worker_id, row in stored.items():
                worker = self._workers.get(worker_id)
                if worker is None:
                    worker = self._build(row)
                    self._workers[worker.id] = worker
                    self._listed = None
                    logger.info("worker %s added on another instance: %s", worker.name, worker.url)
                    self.notify(worker, "added")
                    changed = True
                    continue
                fields = {key: row[key] for key in EDITABLE_FIELDS if key in row and getattr(worker, key) != row[key]}
                worker.updated_at = row.get("updated_at", worker.updated_at)
                if fields:
                    self._apply_fields(worker, fields)
                    changed = True
        finally:
            self.applying_remote = False
        return changed

    def _apply_fields(self, worker: Worker, fields: dict) -> None:
        """Set changed configuration fields and tell listeners (a new URL or credentials: a new client)."""
        reconnect = any(key in fields for key in ("url", "auth_username", "auth_password"))
        for key, value in fields.items():
            setattr(worker, key, value)
        if reconnect:
            worker.client = self._make_client(worker)
            worker.status, worker.failures = "unknown", 0
        logger.info("worker %s updated: %s", worker.name, ", ".join(sorted(fields)))
        self.notify(worker, "reconnect" if reconnect else "updated")

    async def load(self, configured: tuple[dict, ...] = ()) -> None:
        """Read stored workers, then add those listed in gateway.yaml that are not stored yet."""
        for row in await self._store.list_workers():
            worker = self._build(row)
            self._workers[worker.id] = worker
        self._listed = None
        known = {w.url for w in self._workers.values()}
        for item in configured:
            fields = _parse_fields(dict(item), partial=False)
            if fields["url"] not in known:
                await self.add(dict(item))
                known.add(fields["url"])

    async def add(self, body: dict) -> Worker:
        """Register a worker from an API body."""
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        fields = _parse_fields(body, partial=False)
        if any(w.url == fields["url"] for w in self._workers.values()):
            raise Conflict(f"a worker with url {fields['url']} is already registered")
        fields.setdefault("name", "")
        fields.setdefault("max_queue", self._default_max_queue())
        now = time.time()
        row = await self._store.add_worker({**fields, "created_at": now, "updated_at": now})
        worker = self._build(row)
        if not worker.name:
            worker.name = f"worker-{worker.id}"
            await self._store.update_worker(worker.id, {"name": worker.name})
        self._workers[worker.id] = worker
        self._listed = None
        logger.info("worker %s added: %s", worker.name, worker.url)
        self.notify(worker, "added")
        return worker

    async def update(self, worker_id: Any, body: dict) -> Worker:
        """Change a worker's configuration from a PATCH body."""
        worker = self.require(worker_id)
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        fields = _parse_fields(body, partial=True)
        if "url" in fields and any(w.url == fields["url"] and w.id != worker.id for w in self._workers.values()):
            raise Conflict(f"a worker with url {fields['url']} is already registered")
        if not fields:
            return worker
        if "url" in fields and origin_of(fields["url"]) != origin_of(worker.url):
            # Credentials belong to an origin: a new scheme, host or port gets none unless sent again.
            fields.setdefault("auth_username", None)
            fields.setdefault("auth_password", None)
            if worker.auth_password and not fields["auth_password"]:
                logger.info("worker %s moved to another origin: its stored password was dropped", worker.name)
        worker.updated_at = time.time()
        await self._store.update_worker(worker.id, {**fields, "updated_at": worker.updated_at})
        self._apply_fields(worker, fields)
        return worker

    async def delete(self, worker_id: Any) -> Worker:
        """Remove a worker."""
        worker = self.require(worker_id)
        await self._store.delete_worker(worker.id)
        await self._store.forget_worker_status(worker.id)  # a later worker with this id starts afresh
        self._workers.pop(worker.id, None)
        self._listed = None
        logger.info("worker %s deleted", worker.name)
        self.notify(worker, "deleted")
        return worker
