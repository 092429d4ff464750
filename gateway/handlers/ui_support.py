"""Small read-only routes the admin page needs beyond the public API: the workers' measured speeds."""

from __future__ import annotations

from .base import BaseHandler


class WorkerSpeedsHandler(BaseHandler):
    """GET /api/ui/speeds: {"speeds": {worker_id: {speed, observations, last_seen}}} from the cost model."""

    async def get(self) -> None:
        snapshot = self.gw.cost_model.snapshot()
        self.write_json({"speeds": {str(worker_id): info for worker_id, info in snapshot.items()}})


def ui_support_routes() -> list:
    """Routes of this module."""
    return [(r"/api/ui/speeds", WorkerSpeedsHandler)]
