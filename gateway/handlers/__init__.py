"""HTTP and WebSocket routes, grouped by API area."""

from __future__ import annotations

import tornado.web

from .admin import NotFoundHandler, admin_routes
from .comfy import comfy_routes
from .editor import editor_routes
from .files import file_routes
from .guard import apply_forwarded
from .jobs import job_routes
from .tasks import task_routes
from .ui_support import ui_support_routes
from .workers import worker_routes
from .ws import ws_routes


class GatewayApplication(tornado.web.Application):
    """The Tornado application; the client address comes from X-Forwarded-* only via a trusted proxy."""

    def find_handler(self, request, **kwargs):
        apply_forwarded(self.settings["gateway"], request)
        return super().find_handler(request, **kwargs)


def routes(gateway) -> list:
    """Every route of the gateway; unknown paths end in NotFoundHandler."""
    return [*comfy_routes(), *file_routes(), *ws_routes(), *job_routes(), *worker_routes(), *task_routes(),
            *ui_support_routes(), *editor_routes(), *admin_routes(gateway.ui_dir), (r".*", NotFoundHandler)]
