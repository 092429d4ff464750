"""/api/workers: register, list, change, remove and test workers."""

from __future__ import annotations

from ..cluster.forward import forward_to_dispatcher
from ..errors import BadRequest
from ..workers.client import WorkerClient
from ..workers.health import PROBE_TIMEOUT, probe
from ..workers.registry import normalize_url
from .base import BaseHandler


class WorkersHandler(BaseHandler):
    needs_admin = True

    async def get(self) -> None:
        self.write_json([w.public_dict() for w in self.gw.registry.all()])

    async def post(self) -> None:
        worker = await self.gw.registry.add(self.json_body())
        self.write_json(worker.public_dict(), 201)


class WorkerHandler(BaseHandler):
    needs_admin = True

    async def get(self, worker_id: str) -> None:
        self.write_json(self.gw.registry.require(worker_id).public_dict())

    async def patch(self, worker_id: str) -> None:
        worker = await self.gw.registry.update(worker_id, self.json_body())
        self.write_json(worker.public_dict())

    async def delete(self, worker_id: str) -> None:
        worker = await self.gw.registry.delete(worker_id)
        self.write_json({"deleted": worker.id})


class WorkerTestHandler(BaseHandler):
    """POST /api/workers/{id}/test: check the worker now and report what it answered."""

    needs_admin = True

    async def post(self, worker_id: str) -> None:
        worker = self.gw.registry.require(worker_id)
        if await forward_to_dispatcher(self):  # the dispatcher owns the workers' live state
            return
        result = await self.gw.health.check(worker)
        self.write_json({**result.report(), "worker": worker.public_dict()})


class WorkerRefreshHandler(BaseHandler):
    """POST /api/workers/{id}/refresh: re-read the worker's object_info (new nodes or models)."""

    needs_admin = True

    async def post(self, worker_id: str) -> None:
        worker = self.gw.registry.require(worker_id)
        if await forward_to_dispatcher(self):
            return
        await self.gw.health.refresh_object_info(worker)
        self.write_json(worker.public_dict())


class ProbeUrlHandler(BaseHandler):
    """POST /api/workers/test: try a URL (and credentials) before registering it."""

    needs_admin = True

    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        url, user, password = normalize_url(body.get("url"))
        if body.get("auth_username"):
            user, password = body.get("auth_username"), body.get("auth_password")
        elif not user and any(w.url == url for w in self.gw.registry.all()):
            # The global credentials go only to registered workers, never to an arbitrary URL.
            user, password = self.gw.settings.worker_auth_username, self.gw.settings.worker_auth_password
        client = WorkerClient(url, url, lambda: (user, password), lambda: PROBE_TIMEOUT)
        result = await probe(client, PROBE_TIMEOUT)
        self.write_json(result.report())


def worker_routes() -> list:
    """Routes of this module."""
    return [
        (r"/api/workers", WorkersHandler),
        (r"/api/workers/test", ProbeUrlHandler),
        (r"/api/workers/([0-9]+)", WorkerHandler),
        (r"/api/workers/([0-9]+)/test", WorkerTestHandler),
        (r"/api/workers/([0-9]+)/refresh", WorkerRefreshHandler),
    ]
