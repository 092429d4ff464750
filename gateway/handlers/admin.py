"""Gateway's own routes: health, metrics, settings, stats, dispatch control, admin event stream, admin page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import tornado.web

from ..clients.relay import ws_frame

from ..config import SETTINGS_BY_NAME
from ..errors import BadRequest
from ..metrics import render_metrics
from ..openapi import openapi_document
from ..security.tokens import token_matches
from . import guard
from .base import BaseHandler, GatewaySocketHandler


class HealthzHandler(BaseHandler):
    """GET /healthz: always answers while the process serves; says how the cluster is."""

    def prepare(self) -> None:  # no API key needed: load balancers and the tray poll it
        pass

    async def get(self) -> None:
        self.write_json({"status": "ok", "version": self.gw.version,
                         "uptime_seconds": round(time.time() - self.gw.started_at, 1), **self.gw.summary(),
                         "instance": self.gw.cluster.name, "role": self.gw.cluster.role})


class ClusterHandler(BaseHandler):
    """GET /api/cluster: the instances, which one dispatches (the lease), and whether Redis is up."""

    async def get(self) -> None:
        self.write_json(self.gw.cluster.describe())


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        body, content_type = render_metrics(self.gw)
        self.set_header("Content-Type", content_type)
        self.finish(body)


class OpenApiHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json(openapi_document(self.gw.version))


class SettingsHandler(BaseHandler):
    """GET/PATCH /api/settings: the runtime settings (secrets shown only as *_set)."""

    needs_admin = True

    async def get(self) -> None:
        self.write_json(self._view())

    async def patch(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or not body:
            raise BadRequest("body must be a JSON object of settings to change")
        for name in body:
            setting = SETTINGS_BY_NAME.get(name)
            if setting is None or not setting.runtime:
                editable = ", ".join(s.name for s in SETTINGS_BY_NAME.values() if s.runtime)
                raise BadRequest(f"setting {name!r} cannot be changed here; editable: {editable}",
                                 extra={"field": name})
        try:
            await self.gw.update_settings(body)
        except ValueError as exc:
            field = next((name for name in body if name in str(exc)), None)
            raise BadRequest(str(exc), extra={"field": field} if field else None) from None
        self.write_json(self._view())

    def _view(self) -> dict:
        public = self.gw.settings.public_dict()
        editable = [s.name for s in SETTINGS_BY_NAME.values() if s.runtime]
        return {"settings": public, "editable": editable}


class StatsHandler(BaseHandler):
    """GET /api/stats: counts and per-minute throughput of the last hour (the admin page's charts)."""

    async def get(self) -> None:
        now = time.time()
        by_state = await self.gw.store.count_jobs_by_state()
        per_minute = await self.gw.store.job_stats(now - 3600)
        self.write_json({"now": now, "jobs_by_state": by_state, "per_minute": per_minute,
                         "queue_samples": self.gw.queue_samples.as_list(),
                         "cluster_queue_remaining": self.gw.cluster_queue_remaining(), **self.gw.summary()})


class WorkerStatsHandler(BaseHandler):
    """GET /api/stats/workers: per worker over the last hour: done, failed, jobs per hour, busy %, mean run
    time, done jobs per 5 minutes (a chart), and online since / last seen (uptime)."""

    WINDOW = 3600.0
    BUCKETS = 12

    async def get(self) -> None:
        now = time.time()
        stats = await self.gw.store.worker_stats(now - self.WINDOW, now, self.BUCKETS)
        items = []
        for worker in sorted(self.gw.registry.all(), key=lambda w: w.id):
            entry = stats.get(worker.id) or {"done": 0, "failed": 0, "run_seconds": 0.0, "runs": 0,
                                             "per_bucket": [0] * self.BUCKETS}
            items.append({
                "id": worker.id, "name": worker.name, "state": worker.state,
                "done": entry["done"], "failed": entry["failed"],
                "jobs_per_hour": round((entry["done"] + entry["failed"]) * 3600.0 / self.WINDOW, 1),
                "busy_percent": round(min(100.0, 100.0 * entry["run_seconds"] / self.WINDOW), 1),
                "mean_run_seconds": round(entry["run_seconds"] / entry["runs"], 2) if entry["runs"] else None,
                "done_per_bucket": entry["per_bucket"],
                "online_since": worker.online_since, "last_seen": worker.last_seen,
            })
        self.write_json({"now": now, "window_seconds": self.WINDOW, "bucket_seconds": self.WINDOW / self.BUCKETS,
                         "workers": items})


class DispatchHandler(BaseHandler):
    """GET/POST /api/dispatch: pause or resume sending jobs to workers ({"paused": true|false})."""

    needs_admin = True

    async def get(self) -> None:
        self.write_json({"paused": self.gw.dispatcher.paused})

    async def post(self) -> None:
        body = self.json_body()
        paused = body.get("paused") if isinstance(body, dict) else None
        if not isinstance(paused, bool):
            raise BadRequest("field 'paused' must be true or false", extra={"field": "paused"})
        await self.gw.set_paused(paused)
        self.write_json({"paused": self.gw.dispatcher.paused})


class AdminEventsHandler(GatewaySocketHandler):
    """GET /api/events: a WebSocket of {"kind": "worker"|"job"|"summary", "data": ...} for the admin page."""

    def open(self) -> None:
        self.bound_writes()
        self.gw.events.add_admin_listener(self._push)
        self._push("summary", self.gw.summary())

    def _push(self, kind: str, data: dict) -> None:
        # Whole frames into a bounded buffer (as /ws does): a page that stops reading is dropped, and
        # a closed socket is simply forgotten, never a traceback per event.
        if not self.write_frame(ws_frame(json.dumps({"kind": kind, "data": data}))):
            self.gw.events.remove_admin_listener(self._push)

    def on_close(self) -> None:
        self.gw.events.remove_admin_listener(self._push)


class NotFoundHandler(BaseHandler):
    """Unknown paths: the JSON error under /api, an empty 404 elsewhere (as ComfyUI's aiohttp does).

    Answered after the (bounded) body, so the connection stays usable for the client's next request.
    """

    json_routes = False

    def prepare(self) -> None:
        self.open_body()

    def _not_found(self, *args) -> None:
        if self.request.path.startswith("/api/"):
            self.write_json({"error": {"type": "not_found", "message": f"no route {self.request.path}"}}, 404)
        else:
            self.set_status(404)
            self.finish()

    get = head = post = put = patch = delete = options = _not_found


# The admin page loads only its own files; it cannot be framed (clickjacking), and types are not guessed.
CSP = ("default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class UiHandler(tornado.web.StaticFileHandler):
    """The admin page; no caching of HTML/JS so an upgraded gateway shows its new page.

    ``/?token=T`` (the admin link) stores T in an HttpOnly, SameSite=Strict cookie and sends the
    browser on to ``/`` without it, so the token leaves the address bar at once and scripts never
    see it; ``/?token=`` removes the cookie.
    """

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")

    async def get(self, path: str, include_body: bool = True) -> None:
        token = self.get_query_argument("token", None) if self.request.path == "/" else None
        if token is None:
            await super().get(path, include_body)
            return
        gw = self.application.settings["gateway"]
        name = guard.cookie_name(self)
        if not token:
            self.clear_cookie(name, path="/")
        elif token_matches(token, gw.settings.api_keys + ((gw.settings.admin_token,) if gw.settings.admin_token
                                                          else ())):
            self.set_cookie(name, token, path="/", httponly=True, samesite="Strict",
                            secure=self.request.protocol == "https", expires_days=365)
        else:
            self.set_status(401)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": {"type": "unauthorized", "message":
                                              "the token in this link is not valid for this gateway"}}))
            return
        self.set_header("Cache-Control", "no-store")
        self.redirect("/", status=303)


def admin_routes(ui_dir: Path) -> list:
    """Routes of this module (the admin page last, it catches the root)."""
    return [
        (r"/healthz", HealthzHandler),
        (r"/metrics", MetricsHandler),
        (r"/api/openapi.json", OpenApiHandler),
        (r"/api/settings", SettingsHandler),
        (r"/api/stats", StatsHandler),
        (r"/api/stats/workers", WorkerStatsHandler),
        (r"/api/dispatch", DispatchHandler),
        (r"/api/cluster", ClusterHandler),
        (r"/api/events", AdminEventsHandler),
        (r"/()", UiHandler, {"path": str(ui_dir), "default_filename": "index.html"}),
        (r"/ui/(.*)", UiHandler, {"path": str(ui_dir)}),
    ]
