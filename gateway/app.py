"""Build the services, make the Tornado application, start and stop the gateway."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import re
import socket
import time
import uuid
from pathlib import Path

import tornado.httpserver
import tornado.netutil
import tornado.web

from . import __version__
from .clients.relay import ClientHub
from .clients.webhooks import WebhookSender
from .clients.wiring import EventWiring
from .cluster.node import ClusterNode
from .cluster.shared_state import SharedState
from .comfy_api import ComfyApi
from .config import SETTINGS_BY_NAME, Settings
from .clients.webhook_outbox import WebhookOutbox
from .editor.services import Editor
from .files.outputs import OutputIndex
from .files.uploads import UploadService
from .handlers import GatewayApplication, routes
from .jobs.admission import Admission
from .jobs.dispatch import Dispatcher
from .jobs.queue_samples import QueueSamples
from .jobs.service import JobService
from .jobs.timeline import JobTimeline
from .jobs.tracker import JobTracker
from .jobs.waits import JobWaits
from .scheduling.cost_model import CostModel
from .scheduling.scheduler import Scheduler
from .security import redaction
from .security.files import private_dir, private_file
from .security.hosts import HostRules, is_loopback_bind, parse_networks
from .security.files import write_private
from .security.tokens import ADMIN_TOKEN_FILE, load_or_create_admin_token, well_formed
from .store.store import Store
from .workers.client import WorkerClient, configure_http_client
from .workers.connections import IdleConnections
from .workers.health import HealthChecker
from .workers.registry import WorkerRegistry
from .workers.replication import adopt_object_info, apply_status

logger = logging.getLogger(__name__)

MAX_BUFFER = 16 * 1024 * 1024  # bodies are streamed into handlers; the read buffer never holds more
WS_MAX_MESSAGE = 1024 * 1024  # inbound WebSocket messages (clients send small JSON, if anything)
UI_DIR = Path(__file__).resolve().parent.parent / "ui"


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: MySQL/MariaDB, SQLite in the data folder, or memory."""
    kind = settings.database_kind
    if kind == "mysql":
        return Store("mysql", mysql={"host": settings.mysql_host, "port": settings.mysql_port,
                                     "user": settings.mysql_user or "root", "password": settings.mysql_password or "",
                                     "database": settings.mysql_database})
    if kind == "memory":
        return Store("sqlite", sqlite_path=":memory:")
    path = settings.data_path / "gateway.sqlite3"
    private_dir(settings.data_path)
    private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
    return Store("sqlite", sqlite_path=str(path))


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, with API keys in the query replaced by ***."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    uri = re.sub(r"(api_key=)[^&]*", r"\1***", handler.request.uri or "")
    logging.getLogger("tornado.access").log(level, "%d %s %s (%s) %.2fms", status, handler.request.method, uri,
                                            handler.request.remote_ip, 1000.0 * handler.request.request_time())


class Gateway:
    """The whole service: owns every component and the HTTP server."""

    def __init__(self, settings: Settings, ui_dir: Path | None = None):
        # Peewee logs every query with its parameters at DEBUG, worker passwords included: never let it.
        logging.getLogger("peewee").setLevel(logging.INFO)
        self.settings = settings
        self.ui_dir = ui_dir or UI_DIR
        self.started_at = time.time()
        self.version = __version__
        self.server: tornado.httpserver.HTTPServer | None = None
        self.idle_connections = IdleConnections()  # kept raw worker connections (submissions, /view)
        self.port: int | None = None
        self.store = open_store(settings)
        self.scheduler = Scheduler()
        self.cost_model = CostModel()
        self.registry = WorkerRegistry(self.store, self._make_client, lambda: self.settings.default_max_queue)
        self.uploads = UploadService(self.store, settings.data_path)
        self.outputs = OutputIndex(self.store)
        self.jobs = JobService(self.store, self.registry, self.scheduler, lambda: self.settings, self.uploads)
        self.admission = Admission(self.jobs, lambda: self.settings)
        self.waits = JobWaits(self.jobs, lambda: self.settings.max_wait_seconds)
        self.timeline = JobTimeline(self.jobs, self.store)
        self.queue_samples = QueueSamples(self.jobs)
        self.client_id = "comfyui-gateway"  # replaced by the stored id in start()
        self._stored_at_start: dict = {}
        self.dispatcher: Dispatcher | None = None
        self.tracker: JobTracker | None = None
        self.health: HealthChecker | None = None
        self.hub = ClientHub(self.cluster_queue_remaining)
        self.events: EventWiring | None = None
        self.comfy_api = ComfyApi(self)
        self.editor = Editor(self)  # the ComfyUI editor at /comfy/
        self.webhooks: WebhookSender | None = None
        self.outbox: WebhookOutbox | None = None
        self.shared: SharedState | None = None
        self.host_rules = HostRules(settings.host, settings.allowed_hosts, settings.allowed_origins)
        self.trusted_networks = parse_networks(settings.trusted_proxies)
        self._token_made = False
        self._token_generated = False  # the admin token was made by a gateway, not configured
        redaction.add_secrets(settings.admin_token, *settings.api_keys, settings.worker_auth_password,
                              settings.mysql_password, settings.webhook_secret)
        self.cluster = ClusterNode(self)
        clustered = self.cluster.clustered
        self.uploads.shared = clustered
        self.jobs.shared_seq = clustered

    def _make_client(self, worker) -> WorkerClient:
        def auth() -> tuple[str | None, str | None]:
            if worker.auth_username:
                return worker.auth_username, worker.auth_password
            return self.settings.worker_auth_username, self.settings.worker_auth_password
        return WorkerClient(worker.url, worker.name or worker.url, auth, lambda: self.settings.worker_request_timeout,
                            self.idle_connections, user_agent=f"comfyui-gateway/{__version__} ({self.cluster.name})")

    # ----- read models used by handlers and the tray ------------------------------------------------
    def cluster_queue_remaining(self) -> int:
        """Jobs in the whole cluster: the gateway's active jobs plus jobs that workers got from elsewhere."""
        total = len(self.jobs.active)
        for worker in self.registry.snapshot():
            if worker.queue_remaining and worker.status == "online":  # most workers report only our jobs
                ours = sum(1 for j in self.jobs.active_on(worker.id) if j.submitted_at is not None)
                total += max(0, worker.queue_remaining - ours)
        return total

    def summary(self) -> dict:
        """Counts for the tray tooltip and /healthz."""
        workers = self.registry.all()
        counts = self.jobs.counts()
        return {"workers_total": len(workers), "workers_online": sum(w.state in ("online", "draining")
                                                                     for w in workers),
                "jobs_queued": counts["queued"] + counts["submitted"], "jobs_running": counts["running"],
                "paused": bool(self.dispatcher and self.dispatcher.paused)}

    def public_url(self) -> str:
        """The gateway's address for links made without a request (webhooks): public_url, else the
        instance's advertised address."""
        return (self.settings.public_url or self.cluster.address or f"http://127.0.0.1:{self.port}").rstrip("/")

    def admin_link(self) -> str:
        """The admin page's address for a browser on this machine, with the admin token when one is set."""
        host = self.settings.host
        if host in ("", "0.0.0.0", "::", "*"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        url = f"http://{host}:{self.port or self.settings.port}/"
        return url + (f"?token={self.settings.admin_token}" if self.settings.admin_token else "")

    def _ensure_admin_token(self) -> None:
        """Bound beyond loopback without an admin token: make one (kept in the data folder, 0600)."""
        if self.settings.admin_token or is_loopback_bind(self.settings.host):
            return
        token, self._token_made = load_or_create_admin_token(self.settings.data_path)
        self._token_generated = True
        self.settings = dataclasses.replace(self.settings, admin_token=token)
        redaction.add_secrets(token)
        if not self._token_made:
            logger.info("listening beyond loopback: the admin token is in %s (tray: Copy admin link)",
                        self.settings.data_path / ADMIN_TOKEN_FILE)

    async def _share_admin_token(self) -> None:
        """A cluster shares one generated admin token (kept with its settings), so a link or cookie from any
        instance works on every instance, and requests passed to the dispatcher keep working."""
        if not (self.cluster.clustered and self._token_generated):
            return
        stored = (await self.store.get_settings()).get("admin_token")
        if not well_formed(stored):
            await self.store.set_settings({"admin_token": self.settings.admin_token})
        elif stored != self.settings.admin_token:
            self.settings = dataclasses.replace(self.settings, admin_token=stored)
            redaction.add_secrets(stored)
            write_private(self.settings.data_path / ADMIN_TOKEN_FILE, stored + "\n")

    def _announce_admin_link(self) -> None:
        """Log the admin link once, when its token was just made (the only log line that holds a secret)."""
        logger.warning("listening beyond loopback, so changes need the admin token; it was made now and kept "
                       "in %s. Admin page: %s", self.settings.data_path / ADMIN_TOKEN_FILE, self.admin_link(),
                       extra={"redacted": True})

    # ----- runtime settings -------------------------------------------------------------------------
    async def update_settings(self, changes: dict) -> Settings:
        """Apply and persist runtime settings (PATCH /api/settings); other instances follow."""
        self.settings = self.settings.with_changes(changes)
        redaction.add_secrets(self.settings.worker_auth_password)
        stored = await self.store.get_settings()
        overrides = dict(stored.get("runtime") or {})
        overrides.update({name: getattr(self.settings, name) for name in changes})
        await self.store.set_settings({"runtime": overrides})
        logger.info("settings changed: %s", ", ".join(sorted(changes)))
        self.cluster.links.notice("settings")
        self.dispatcher.wake()
        return self.settings

    async def set_paused(self, paused: bool) -> None:
        """Pause or resume dispatching, for the whole cluster and across restarts."""
        await self.store.set_settings({"dispatch_paused": bool(paused)})
        (self.dispatcher.pause if paused else self.dispatcher.resume)()
        self.cluster.links.notice("settings")
        self.events.emit_summary()

    def apply_stored_settings(self, stored: dict) -> None:
        """Take runtime settings and the dispatch switch as stored (at start, or changed by another instance)."""
        overrides = {k: v for k, v in (stored.get("runtime") or {}).items()
                     if k in SETTINGS_BY_NAME and SETTINGS_BY_NAME[k].runtime}
        changed = {k: v for k, v in overrides.items() if getattr(self.settings, k) != v}
        if changed:
            self.settings = self.settings.with_changes(changed)
            logger.info("settings saved from the admin page override the config files: %s",
                        ", ".join(sorted(changed)))
        paused = bool(stored.get("dispatch_paused"))
        if self.dispatcher is not None and paused != self.dispatcher.paused:
            (self.dispatcher.pause if paused else self.dispatcher.resume)()
            if self.events is not None:
                self.events.emit_summary()

    async def _load_runtime_settings(self) -> None:
        stored = await self.store.get_settings()
        self._stored_at_start = stored
        self.apply_stored_settings(stored)
        self.client_id = stored.get("gateway_client_id") or ""
        if not self.client_id:
            self.client_id = f"comfyui-gateway-{uuid.uuid4().hex}"
            await self.store.set_settings({"gateway_client_id": self.client_id})

    # ----- life cycle -------------------------------------------------------------------------------
    def make_app(self) -> tornado.web.Application:
        """The Tornado application with every route."""
        return GatewayApplication(routes(self), gateway=self, websocket_max_message_size=WS_MAX_MESSAGE,
                                  compress_response=False, log_function=log_request)

    async def start(self, sockets: list[socket.socket] | None = None) -> int:
        """Open the store, load state, join the cluster (or take the lease alone) and listen; returns the port."""
        configure_http_client()
        private_dir(self.settings.data_path)
        self._ensure_admin_token()
        await self.store.open()
        await self._share_admin_token()
        await self._load_runtime_settings()
        await self.uploads.load()
        if sockets is None:
            sockets = tornado.netutil.bind_sockets(self.settings.port, self.settings.host)
        self.port = sockets[0].getsockname()[1]  # connections wait in the backlog until add_sockets below
        self.dispatcher = Dispatcher(self.jobs, self.registry, self.scheduler, self.cost_model,
                                     lambda: self.settings, self.client_id, self.outputs, self.uploads)
        self.dispatcher.paused = bool(self._stored_at_start.get("dispatch_paused"))
        self.dispatcher.may_send = self.cluster.lease.may_send
        self.jobs.dispatcher = self.dispatcher
        self.jobs.on_fenced = self.cluster.lease.fenced
        self.tracker = JobTracker(self.jobs, self.dispatcher, self.registry, self.outputs, lambda: self.settings)
        self.health = HealthChecker(self.registry, lambda: self.settings.health_interval,
                                    lambda: self.settings.offline_after, lambda: self.settings.worker_request_timeout,
                                    self.tracker.on_queue, self.tracker.on_worker_lost)
        self.health.store = self.store
        self.dispatcher.health = self.health
        self.events = EventWiring(self)
        self.events.attach()
        self.outbox = WebhookOutbox(self.store, lambda: self.settings)
        self.webhooks = WebhookSender(self.jobs, self.outbox, self.public_url)
        if self.settings.redis_url:
            self.shared = SharedState(self.settings.redis_url, self.settings.redis_prefix,
                                      lambda: self.settings.queue_cache_ttl_seconds)
            await self.shared.start(self.registry, self.jobs)
        await self.registry.load(self.settings.workers)
        await self._load_worker_status()
        await self.cluster.start(self.port)
        # No xheaders: X-Forwarded-*/X-Real-IP are read only from trusted_proxies (GatewayApplication).
        # Handlers stream bodies and set their own limit; this one caps the few that do not (static files).
        self.server = tornado.httpserver.HTTPServer(self.make_app(), xheaders=False,
                                                    max_body_size=self.settings.max_json_body_size,
                                                    max_buffer_size=MAX_BUFFER)
        self.server.add_sockets(sockets)
        # Everything built so far lives as long as the process: keep it out of the cyclic collector,
        # so full collections (seen stalling the loop for 100 ms under load) have less to walk.
        gc.freeze()
        logger.info("comfyui-gateway %s listening on http://%s:%d (store: %s, %s)", __version__,
                    self.settings.host, self.port, self.settings.database_kind, self.cluster.role)
        if self._token_made:
            self._announce_admin_link()
        return self.port

    async def _load_worker_status(self) -> None:
        """The workers' last known node lists (so jobs are checked while they are offline) and, on an
        instance that does not dispatch, their last known live state."""
        rows = await self.store.worker_status_since(0.0)
        for row in rows:
            worker = self.registry.get(row["worker_id"])
            if worker is None:
                continue
            await adopt_object_info(self.store, worker, row.get("object_info_hash"))
            if self.cluster.clustered:
                worker.status_synced_at = row["updated_at"]
                apply_status(worker, row["status"] or {})

    async def start_dispatching(self, epoch: int) -> None:
        """This instance now holds the dispatcher lease: load the jobs from the store and move them."""
        self.jobs.fence = epoch
        recovered = await self.jobs.load(recover=True)
        self.events.start(recovered)
        self.dispatcher.start()
        self.health.start()
        self.queue_samples.start()
        self.health.check_soon()
        self.outbox.start()  # webhooks are delivered by the dispatcher only (once, whoever accepted the job)
        logger.info("dispatching (lease epoch %d, %d unfinished job(s))", epoch, len(recovered))

    async def stop_dispatching(self) -> None:
        """No longer the dispatcher (lease lost, handed over or shutting down): stop checking and sending."""
        if self.health:
            await self.health.stop()
            await self.queue_samples.stop()
        if self.dispatcher:
            await self.dispatcher.stop()
        if self.events:
            await self.events.stop()
        if self.outbox:
            await self.outbox.stop()

    async def stop(self) -> None:
        """Stop taking requests, stop background work, finish writes, hand the lease over, close connections."""
        logger.info("shutting down")
        if self.server:
            self.server.stop()
        self.waits.release_all()  # waiting requests answer now, with the jobs as they are
        await self.stop_dispatching()
        await self.jobs.flush()  # still under the lease: the last changes are written
        await self.timeline.flush()
        await self.cluster.stop()
        if self.shared:
            await self.shared.stop()
        if self.server:
            try:
                await asyncio.wait_for(self.server.close_all_connections(), 2.0)
            except asyncio.TimeoutError:
                pass
        self.idle_connections.close_all()
        await self.store.close()
        logger.info("stopped")
