"""The editor's services, built once by the Gateway."""

from __future__ import annotations

from .cluster_views import ClusterViews
from .jobs_view import JobsView
from .static import StaticFiles
from .userdata import UserData


class Editor:
    """User data (store), static files (one online worker), union views and /api/jobs."""

    def __init__(self, gateway):
        settings = lambda: gateway.settings  # noqa: E731  (settings are replaced when changed at run time)
        self.userdata = UserData(gateway.store, lambda: int(settings().editor_file_limit_mb * 1024 * 1024))
        self.static = StaticFiles(gateway.registry, lambda: settings().editor_cache_mb * 1024 * 1024)
        self.views = ClusterViews(gateway.registry)
        self.jobs = JobsView(gateway)
