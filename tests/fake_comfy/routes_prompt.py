"""HTTP routes for prompts, the queue, interrupts and history (§3-§5)."""

from __future__ import annotations

import copy
import json
import logging
import re
import time
import uuid

from aiohttp import web

from .validation import validate_prompt

log = logging.getLogger(__name__)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _error(type_, message, details="", status=400, node_errors=None):
    body = {"error": {"type": type_, "message": message, "details": details, "extra_info": {}},
            "node_errors": node_errors or {}}
    return web.json_response(body, status=status)


class PromptRoutes:
    """Handlers bound to one FakeComfy."""

    def __init__(self, sim):
        self.sim = sim

    def register(self, add):
        add("GET", "/prompt", self.get_prompt)
        add("POST", "/prompt", self.post_prompt)
        add("GET", "/queue", self.get_queue)
        add("POST", "/queue", self.post_queue)
        add("POST", "/interrupt", self.post_interrupt)
        add("POST", "/free", self.post_free)
        add("GET", "/history", self.get_history)
        add("GET", "/history/{prompt_id}", self.get_history_item)
        add("POST", "/history", self.post_history)

    async def get_prompt(self, request):
        return web.json_response(self.sim.queue.queue_info())

    async def post_prompt(self, request):
        data = await request.json()  # malformed JSON -> aiohttp's plain-text 500
        self.sim.prompt_posts.append((time.time(), data.get("prompt_id") if isinstance(data, dict) else None,
                                      request.headers.get("User-Agent")))
        queue = self.sim.queue
        if "number" in data:
            number = float(data["number"])
        else:
            number = queue.number
            if data.get("front"):
                number = -number
            queue.number += 1
        if "prompt" not in data:
            return _error("no_prompt", "No prompt provided", "No prompt provided")
        prompt = data["prompt"]
        raw_id = data.get("prompt_id")
        if raw_id is None:
            prompt_id = str(uuid.uuid4())
        else:
            if not isinstance(raw_id, str) or not UUID_RE.match(raw_id):
                return _error("invalid_prompt_id", "prompt_id must be a valid UUID", str(raw_id))
            prompt_id = raw_id
            if queue.knows(prompt_id):
                return web.json_response({"error": "prompt_id already exists"}, status=409)
        targets = data.get("partial_execution_targets")
        ok, error, outputs, node_errors = validate_prompt(self.sim, self.sim.nodes, prompt, targets)
        extra_data = data.get("extra_data", {})
        if not isinstance(extra_data, dict):
            extra_data = {}
        if "client_id" in data:
            extra_data["client_id"] = data["client_id"]
        if not ok:
            log.debug("prompt rejected: %s", error.get("type"))
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        if queue.knows(prompt_id):  # a client-chosen id raced in meanwhile
            return web.json_response({"error": "prompt_id already exists"}, status=409)
        queue.put([number, prompt_id, prompt, extra_data, outputs])
        return web.json_response({"prompt_id": prompt_id, "number": number,
                                  "node_errors": node_errors})

    async def get_queue(self, request):
        return web.json_response(self.sim.queue.snapshot())

    async def post_queue(self, request):
        data = await request.json()
        if data.get("clear"):
            self.sim.queue.clear()
        if "delete" in data:
            self.sim.queue.delete(data["delete"])
        return web.Response(status=200)

    async def post_interrupt(self, request):
        try:
            data = json.loads(await request.text() or "{}")
        except ValueError:
            data = {}
        engine = self.sim.engine
        target = data.get("prompt_id") if isinstance(data, dict) else None
        if target is None:
            log.info("global interrupt")
            engine.interrupt_flag = True
        elif engine.running_prompt_id == target:
            log.info("interrupt of running prompt %s", target)
            engine.interrupt_flag = True
        else:
            log.info("interrupt for %s ignored: not running", target)
        return web.Response(status=200)

    async def post_free(self, request):
        data = await request.json()
        self.sim.queue.set_flags(bool(data.get("unload_models")), bool(data.get("free_memory")))
        return web.Response(status=200)

    async def get_history(self, request):
        query = request.rel_url.query
        max_items = query.get("max_items")
        if max_items is not None:
            max_items = int(max_items)  # non-integer -> 500 like ComfyUI
        offset = int(query.get("offset", -1))
        return web.json_response(self.sim.queue.get_history(max_items, offset))

    async def get_history_item(self, request):
        prompt_id = request.match_info["prompt_id"]
        history = self.sim.queue.history
        if prompt_id in history:
            return web.json_response({prompt_id: copy.deepcopy(history[prompt_id])})
        return web.json_response({})

    async def post_history(self, request):
        data = await request.json()
        if data.get("clear"):
            self.sim.queue.history.clear()
        for pid in data.get("delete", []) or []:
            self.sim.queue.history.pop(pid, None)
        return web.Response(status=200)
