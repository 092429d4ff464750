"""/api/jobs of newer ComfyUI for the whole cluster (the newest editor's queue and history panels read it)."""

from __future__ import annotations

from ..cluster.forward import forward_to_dispatcher
from .base import ComfyHandler


class JobsApiHandler(ComfyHandler):
    """Gives handlers the jobs view and one-value query arguments."""

    @property
    def view(self):
        return self.gw.editor.jobs

    def query(self) -> dict:
        """The query arguments, one value each."""
        return {k: self.get_query_argument(k) for k in self.request.query_arguments}


class JobsHandler(JobsApiHandler):
    async def get(self) -> None:
        self.write_json(await self.view.list(self.query()))


class JobHandler(JobsApiHandler):
    async def get(self, prompt_id: str) -> None:
        self.write_json(await self.view.one(prompt_id))


class CancelJobHandler(JobsApiHandler):
    async def post(self, prompt_id: str) -> None:
        if await forward_to_dispatcher(self):  # the dispatcher owns the jobs it cancels
            return
        self.write_json(await self.view.cancel(prompt_id))


class CancelJobsHandler(JobsApiHandler):
    async def post(self) -> None:
        body = self.comfy_json()
        if await forward_to_dispatcher(self):
            return
        self.write_json(await self.view.cancel_many(body))


def job_routes() -> list:
    """Routes of this module; newer ComfyUI serves them under /api only."""
    return [
        (r"/api/jobs", JobsHandler),
        (r"/api/jobs/cancel", CancelJobsHandler),
        (r"/api/jobs/([^/]+)", JobHandler),
        (r"/api/jobs/([^/]+)/cancel", CancelJobHandler),
    ]
