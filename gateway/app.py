"""Build the services, make the Tornado application, start and stop the gateway."""

from __future__ import annotations

import asyncio
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
from .cluster.shared_state import SharedState
from .comfy_api import ComfyApi
from .config import SETTINGS_BY_NAME, Settings
from .editor.services import Editor
from .files.outputs import OutputIndex
from .files.uploads import UploadService
from .handlers import routes
from .jobs.dispatch import Dispatcher
from .jobs.service import JobService
from .jobs.tracker import JobTracker
from .scheduling.cost_model import CostModel
from .scheduling.scheduler import Scheduler
from .store.store import Store
from .workers.client import WorkerClient, configure_http_client
from .workers.connections import IdleConnections
from .workers.health import HealthChecker
from .workers.registry import WorkerRegistry

logger = logging.getLogger(__name__)

MAX_BODY = 512 * 1024 * 1024
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
    return Store("sqlite", sqlite_path=str(settings.data_path / "gateway.sqlite3"))


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
        self.client_id = "comfyui-gateway"  # replaced by the stored id in start()
        self.dispatcher: Dispatcher | None = None
        self.tracker: JobTracker | None = None
        self.health: HealthChecker | None = None
        self.hub = ClientHub(self.cluster_queue_remaining)
        self.events: EventWiring | None = None
        self.comfy_api = ComfyApi(self)
        self.editor = Editor(self)  # the ComfyUI editor at /comfy/
        self.webhooks: WebhookSender | None = None
        self.shared: SharedState | None = None

    def _make_client(self, worker) -> WorkerClient:
        def auth() -> tuple[str | None, str | None]:
            if worker.auth_username:
                return worker.auth_username, worker.auth_password
            return self.settings.worker_auth_username, self.settings.worker_auth_password
        return WorkerClient(worker.url, worker.name or worker.url, auth, lambda: self.settings.worker_request_timeout,
                            self.idle_connections)

    # ----- read models used by handlers and the tray ------------------------------------------------
    def cluster_queue_remaining(self) -> int:
        """Jobs in the whole cluster: the gateway's active jobs plus jobs that workers got from elsewhere."""
        total = len(self.jobs.active)
        for worker in self.registry.all():
            if worker.status == "online":
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

    # ----- runtime settings -------------------------------------------------------------------------
    async def update_settings(self, changes: dict) -> Settings:
        """Apply and persist runtime settings (PATCH /api/settings)."""
        self.settings = self.settings.with_changes(changes)
        stored = await self.store.get_settings()
        overrides = dict(stored.get("runtime") or {})
        overrides.update({name: getattr(self.settings, name) for name in changes})
        await self.store.set_settings({"runtime": overrides})
        logger.info("settings changed: %s", ", ".join(sorted(changes)))
        self.dispatcher.wake()
        return self.settings

    async def _load_runtime_settings(self) -> None:
        stored = await self.store.get_settings()
        overrides = {k: v for k, v in (stored.get("runtime") or {}).items()
                     if k in SETTINGS_BY_NAME and SETTINGS_BY_NAME[k].runtime}
        if overrides:
            self.settings = self.settings.with_changes(overrides)
            logger.info("settings saved from the admin page override the config files: %s",
                        ", ".join(sorted(overrides)))
        self.client_id = stored.get("gateway_client_id") or ""
        if not self.client_id:
            self.client_id = f"comfyui-gateway-{uuid.uuid4().hex}"
            await self.store.set_settings({"gateway_client_id": self.client_id})

    # ----- life cycle -------------------------------------------------------------------------------
    def make_app(self) -> tornado.web.Application:
        """The Tornado application with every route."""
        return tornado.web.Application(routes(self), gateway=self, websocket_max_message_size=64 * 1024 * 1024,
                                       compress_response=False, log_function=log_request)

    async def start(self, sockets: list[socket.socket] | None = None) -> int:
        """Open the store, load state, start background work and listen; returns the port."""
        configure_http_client()
        self.settings.data_path.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        await self._load_runtime_settings()
        await self.uploads.load()
        self.dispatcher = Dispatcher(self.jobs, self.registry, self.scheduler, self.cost_model,
                                     lambda: self.settings, self.client_id, self.outputs, self.uploads)
        self.jobs.dispatcher = self.dispatcher
        self.tracker = JobTracker(self.jobs, self.dispatcher, self.registry, self.outputs, lambda: self.settings)
        self.health = HealthChecker(self.registry, lambda: self.settings.health_interval,
                                    lambda: self.settings.offline_after, lambda: self.settings.worker_request_timeout,
                                    self.tracker.on_queue, self.tracker.on_worker_lost)
        self.dispatcher.health = self.health
        self.events = EventWiring(self)
        self.webhooks = WebhookSender(self.jobs)
        if self.settings.redis_url:
            self.shared = SharedState(self.settings.redis_url, self.settings.redis_prefix,
                                      lambda: self.settings.queue_cache_ttl_seconds)
            await self.shared.start(self.registry, self.jobs)
        await self.registry.load(self.settings.workers)
        recovered = await self.jobs.load()
        self.events.start(recovered)
        self.dispatcher.start()
        self.health.start()
        self.server = tornado.httpserver.HTTPServer(self.make_app(), xheaders=True, max_body_size=MAX_BODY,
                                                    max_buffer_size=MAX_BODY)
        if sockets is None:
            sockets = tornado.netutil.bind_sockets(self.settings.port, self.settings.host)
        self.server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        # Everything built so far lives as long as the process: keep it out of the cyclic collector,
        # so full collections (seen stalling the loop for 100 ms under load) have less to walk.
        gc.freeze()
        logger.info("comfyui-gateway %s listening on http://%s:%d (store: %s)", __version__, self.settings.host,
                    self.port, self.settings.database_kind)
        return self.port

    async def stop(self) -> None:
        """Stop taking requests, stop background work, finish writes, close connections."""
        logger.info("shutting down")
        if self.server:
            self.server.stop()
        if self.health:
            await self.health.stop()
        if self.dispatcher:
            await self.dispatcher.stop()
        if self.events:
            await self.events.stop()
        await self.jobs.flush()
        if self.webhooks:
            await self.webhooks.stop()
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
