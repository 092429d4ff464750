"""HTTP and WebSocket routes, grouped by API area."""

from __future__ import annotations

from .admin import NotFoundHandler, admin_routes
from .comfy import comfy_routes
from .editor import editor_routes
from .files import file_routes
from .jobs import job_routes
from .tasks import task_routes
from .ui_support import ui_support_routes
from .workers import worker_routes
from .ws import ws_routes


def routes(gateway) -> list:
    """Every route of the gateway; unknown paths end in NotFoundHandler."""
    return [*comfy_routes(), *file_routes(), *ws_routes(), *job_routes(), *worker_routes(), *task_routes(),
            *ui_support_routes(), *editor_routes(), *admin_routes(gateway.ui_dir), (r".*", NotFoundHandler)]
