"""The prompt queue, the history and the single asyncio worker.

Items are ``[number, prompt_id, prompt, extra_data, outputs_to_execute]`` kept
in a binary heap (ordered by number, then prompt_id).  Every queue change
broadcasts a ``status`` message; the worker runs one prompt at a time and,
after writing history, sends ``status`` and (with a client_id)
``executing(node: null)``.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional

log = logging.getLogger(__name__)

MAX_HISTORY = 10000
SECRET_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


class _HeapItem:
    """Heap wrapper comparing by (number, prompt_id) only."""

    __slots__ = ("item",)

    def __init__(self, item):
        self.item = item

    def __lt__(self, other):
        return (self.item[0], self.item[1]) < (other.item[0], other.item[1])


class PromptQueue:
    """Pending heap, running item, history and the counter of one server process."""

    def __init__(self, sim):
        self.sim = sim
        self.heap: List[_HeapItem] = []
        self.running: Optional[list] = None
        self.history: "OrderedDict[str, dict]" = OrderedDict()
        self.number = 0
        self.flags: Dict[str, bool] = {}
        self._wakeup = asyncio.Event()
        self._task: Optional[asyncio.Task] = None

    # -- state ----------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return len(self.heap) + (1 if self.running is not None else 0)

    def queue_info(self) -> dict:
        return {"exec_info": {"queue_remaining": self.remaining}}

    def knows(self, prompt_id: str) -> bool:
        if prompt_id in self.history:
            return True
        if self.running is not None and self.running[1] == prompt_id:
            return True
        return any(h.item[1] == prompt_id for h in self.heap)

    def _updated(self) -> None:
        self.sim.hub.send("status", {"status": self.queue_info()}, None)

    def put(self, item: list) -> None:
        heapq.heappush(self.heap, _HeapItem(item))
        self._updated()
        self._wakeup.set()

    def snapshot(self) -> dict:
        running = [copy.deepcopy(self.running[:5])] if self.running is not None else []
        pending = [copy.deepcopy(h.item[:5]) for h in self.heap]
        return {"queue_running": running, "queue_pending": pending}

    def delete(self, prompt_ids) -> None:
        for pid in prompt_ids:
            for i, h in enumerate(self.heap):
                if h.item[1] == pid:
                    self.heap.pop(i)
                    heapq.heapify(self.heap)
                    self._updated()
                    break

    def clear(self) -> None:
        self.heap = []
        self._updated()

    def get_history(self, max_items: Optional[int] = None, offset: int = -1) -> dict:
        out = {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        for i, (key, entry) in enumerate(self.history.items()):
            if i >= offset:
                out[key] = copy.deepcopy(entry)
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    # -- worker ---------------------------------------------------------------
    def start(self) -> None:
        self._wakeup = asyncio.Event()
        if self.heap:
            self._wakeup.set()
        self._task = asyncio.ensure_future(self._worker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None

    async def _worker(self) -> None:
        while True:
            while not self.heap:
                self._wakeup.clear()
                await self._wakeup.wait()
            item = heapq.heappop(self.heap).item
            self.running = item
            self._updated()
            prompt_id = item[1]
            self.sim.executed.append(prompt_id)
            log.debug("executing prompt %s (number %s)", prompt_id, item[0])
            try:
                result, status = await self.sim.engine.execute(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep the worker alive
                log.exception("engine crashed on %s", prompt_id)
                result, status = {"outputs": {}, "meta": {}}, {
                    "status_str": "error", "completed": False, "messages": []}
            self._task_done(item, result, status)
            client_id = item[3].get("client_id")
            if client_id is not None:
                self.sim.hub.send("executing", {"node": None, "prompt_id": prompt_id}, client_id)
            self._process_flags()
            await asyncio.sleep(0)

    def _task_done(self, item, result: dict, status: dict) -> None:
        stored = copy.deepcopy(item[:5])
        for key in SECRET_KEYS:
            stored[3].pop(key, None)
        if len(self.history) > MAX_HISTORY:
            self.history.popitem(last=False)
        entry: Dict[str, Any] = {"prompt": stored, "outputs": {}, "status": status}
        entry.update(copy.deepcopy(result))
        self.history[item[1]] = entry
        self.running = None
        self._updated()

    def _process_flags(self) -> None:
        if self.flags.pop("free_memory", False):
            self.sim.engine.reset_cache()
        self.flags.pop("unload_models", None)

    def set_flags(self, unload_models: bool, free_memory: bool) -> None:
        if unload_models:
            self.flags["unload_models"] = True
        if free_memory:
            self.flags["free_memory"] = True
        if self.running is None:
            self._process_flags()
