"""ComfyUI-compatible routes: prompt, queue, interrupt, free, history and the info routes."""

from __future__ import annotations

from ..comfy_api import ComfyApi
from ..cluster.forward import forward_to_dispatcher
from ..errors import BadRequest, ComfyError
from .base import ComfyHandler, dual
from .waiting import WaitingMixin


class ComfyApiHandler(ComfyHandler):
    """Gives handlers the ComfyApi service."""

    @property
    def api(self) -> ComfyApi:
        return self.gw.comfy_api


class PromptHandler(WaitingMixin, ComfyApiHandler):
    async def get(self) -> None:
        self.write_json(self.api.prompt_info())

    async def post(self) -> None:
        body = self.comfy_json()
        wait = self.requested_wait(body)
        self.gw.admission.check(self.token)
        status, answer = await self.gw.jobs.submit(body)
        if status == 200:
            self.gw.admission.track(answer["prompt_id"], self.token)
        if status != 200 or wait is None:
            self.write_json(answer, status)
            return
        await self.answer_when_done(answer, wait)


class QueueHandler(ComfyApiHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(await self.api.queue_body())

    async def post(self) -> None:
        body = self.comfy_json()
        if isinstance(body, dict) and body.get("clear"):
            self.require_admin("clearing the whole queue")
        if await forward_to_dispatcher(self):
            return
        await self.api.delete_from_queue(body)
        self.write_empty()


class InterruptHandler(ComfyApiHandler):
    async def post(self) -> None:
        try:
            body = self.comfy_json()
        except ComfyError:
            body = None  # ComfyUI tolerates an invalid body here: it means a global interrupt
        if not (isinstance(body, dict) and body.get("prompt_id")):
            self.require_admin("interrupting every running job")
        if await forward_to_dispatcher(self):
            return
        await self.api.interrupt(body)
        self.write_empty()


class FreeHandler(ComfyApiHandler):
    async def post(self) -> None:
        body = self.comfy_json()
        self.require_admin("freeing memory on every worker")
        await self.api.free(body)
        self.write_empty()


def _int_arg(handler: ComfyHandler, name: str) -> int | None:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be an integer", extra={"field": name}) from None
    if value < 0:
        raise BadRequest(f"query parameter '{name}' must be 0 or more", extra={"field": name})
    return value


class HistoryHandler(ComfyApiHandler):
    async def get(self) -> None:
        entries = await self.api.history_many(_int_arg(self, "max_items"), _int_arg(self, "offset"),
                                              self.base_url())
        self.write_json(entries)

    async def post(self) -> None:
        body = self.comfy_json()
        if isinstance(body, dict) and (body.get("clear") or body.get("delete")):
            self.require_admin("deleting history")
        await self.api.history_post(body)
        self.write_empty()


class HistoryItemHandler(ComfyApiHandler):
    async def get(self, prompt_id: str) -> None:
        self.write_json(await self.api.history_one(prompt_id, self.base_url()))


class ObjectInfoHandler(ComfyApiHandler):
    async def get(self, node_class: str | None = None) -> None:
        self.write_json(self.api.object_info(node_class or None))


class SystemStatsHandler(ComfyApiHandler):
    async def get(self) -> None:
        self.write_json(await self.api.system_stats())


class ProxyJsonHandler(ComfyApiHandler):
    """A read-only route answered by one online worker (features, extensions)."""

    def initialize(self, worker_path: str) -> None:
        self.worker_path = worker_path

    async def get(self) -> None:
        self.write_json(await self.api.proxy_json(self.worker_path))


class UnionListHandler(ComfyApiHandler):
    """A list route answered with the union over every online worker (embeddings, models)."""

    async def get(self, folder: str | None = None) -> None:
        result = await self.api.union_list(worker_path(self.request.path))
        if result is None:
            if folder:
                raise ComfyError(404, b"")  # ComfyUI's answer for an unknown model folder
            result = []
        self.write_json(result)


def worker_path(path: str) -> str:
    """A ComfyUI route's bare path, as every worker serves it: without /comfy (the editor) and /api."""
    for prefix in ("/comfy", "/api"):
        if path.startswith(prefix + "/"):
            path = path[len(prefix):]
    return path


def comfy_routes() -> list:
    """Routes of this module, each at the bare path and under /api."""
    return [
        *dual(r"/prompt", PromptHandler),
        *dual(r"/queue", QueueHandler),
        *dual(r"/interrupt", InterruptHandler),
        *dual(r"/free", FreeHandler),
        *dual(r"/history", HistoryHandler),
        *dual(r"/history/([^/]+)", HistoryItemHandler),
        *dual(r"/object_info", ObjectInfoHandler),
        *dual(r"/object_info/([^/]+)", ObjectInfoHandler),
        *dual(r"/system_stats", SystemStatsHandler),
        *dual(r"/features", ProxyJsonHandler, worker_path="/features"),
        *dual(r"/extensions", ProxyJsonHandler, worker_path="/extensions"),
        *dual(r"/embeddings", UnionListHandler),
        *dual(r"/models", UnionListHandler),
        *dual(r"/models/([^/]+)", UnionListHandler),
    ]
