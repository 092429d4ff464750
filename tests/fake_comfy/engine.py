"""Execution of one prompt, emitting ComfyUI 0.3.64's event sequence.

Per executed node: ``progress_state`` (running) -> ``executing`` -> interrupt
check -> work -> ``executed`` (if UI output) -> ``progress_state`` (finished).
Cached output nodes only get ``executed`` (replaying the old UI) and a
``progress_state`` with integer value/max.  Events guarded by a client_id are
skipped for prompts without one; the others go to ``sid=None`` (broadcast).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from typing import Any, Dict, List, Optional

from .graph import ExecutionList, is_link, signatures
from .imaging import next_counter, split_prefix, temp_prefix, write_png
from .noderun import BEHAVIOURS
from .progress import ProgressRegistry

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised at a node boundary (or KSampler step) after POST /interrupt."""


class SimulatedFailure(RuntimeError):
    """The runtime error injected by ``FakeComfy.fail_prompt``."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _type_name(ex: BaseException) -> str:
    module = type(ex).__module__
    name = type(ex).__qualname__
    return name if module in ("builtins", "__main__") else f"{module}.{name}"


def _fmt_input(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


class Engine:
    """Runs prompts one at a time and owns the classic node cache."""

    def __init__(self, sim):
        self.sim = sim
        self.client_id: Optional[str] = None
        self.last_node_id: Optional[str] = None
        self.interrupt_flag = False
        self.running_prompt_id: Optional[str] = None
        self.outputs_cache: Dict[str, tuple] = {}
        self.ui_cache: Dict[str, dict] = {}

    def reset_cache(self) -> None:
        self.outputs_cache.clear()
        self.ui_cache.clear()

    def _add_message(self, ctx, event: str, data: dict, broadcast: bool) -> None:
        data = {**data, "timestamp": _now_ms()}
        ctx["messages"].append([event, data])
        if self.client_id is not None or broadcast:
            self.sim.hub.send(event, data, self.client_id)

    async def execute(self, item) -> tuple:
        """Run queue item ``[number, id, prompt, extra_data, outputs]``; return (result, status)."""
        _, prompt_id, prompt, extra_data, outputs = item[:5]
        self.client_id = extra_data.get("client_id")
        self.interrupt_flag = False
        self.running_prompt_id = prompt_id
        self.last_node_id = None
        failing = self.sim.should_fail(prompt_id, prompt)
        ctx: Dict[str, Any] = {"messages": [], "prompt_id": prompt_id, "prompt": prompt,
                               "extra_data": extra_data, "executed": [], "failing": failing}
        progress = ProgressRegistry(prompt_id, self._send_progress_state)
        ctx["progress"] = progress
        self._add_message(ctx, "execution_start", {"prompt_id": prompt_id}, False)
        sigs = signatures(prompt, self.sim.input_file_hash)
        ctx["sigs"] = sigs
        live = set(sigs.values())
        for cache in (self.outputs_cache, self.ui_cache):
            for key in [k for k in cache if k not in live]:
                del cache[key]

        def cached(nid):
            return not failing and sigs[nid] in self.outputs_cache

        self._add_message(ctx, "execution_cached",
                          {"nodes": [n for n in prompt if cached(n)], "prompt_id": prompt_id}, False)
        nodes = self.sim.nodes
        elist = ExecutionList(prompt, lambda n: nodes[prompt[n]["class_type"]].output_node, cached)
        for out in outputs:
            elist.add_node(out)
        success = True
        current = None
        try:
            while elist:
                current = elist.next_node()
                if current is None:
                    raise RuntimeError("dependency cycle")
                await self._run_node(ctx, current, cached(current))
                elist.complete(current)
        except asyncio.CancelledError:
            raise
        except Exception as ex:  # noqa: BLE001 - every node failure becomes an event
            success = False
            self._report_error(ctx, current, ex)
        ui_outputs, meta = {}, {}
        for nid in prompt:
            ui = self.ui_cache.get(sigs[nid])
            if ui is not None:
                ui_outputs[nid] = ui["output"]
                meta[nid] = ui["meta"]
        if success:
            self._add_message(ctx, "execution_success", {"prompt_id": prompt_id}, False)
        self.last_node_id = None
        self.running_prompt_id = None
        status = {"status_str": "success" if success else "error", "completed": success,
                  "messages": ctx["messages"]}
        return {"outputs": ui_outputs, "meta": meta}, status

    def _send_progress_state(self, data: dict) -> None:
        self.sim.hub.send("progress_state", data, self.client_id)

    def _node_msg(self, ctx, node_id: str) -> dict:
        return {"node": node_id, "display_node": node_id, "prompt_id": ctx["prompt_id"]}

    async def _run_node(self, ctx, node_id: str, is_cached: bool) -> None:
        sig = ctx["sigs"][node_id]
        node = ctx["prompt"][node_id]
        if is_cached:
            if self.client_id is not None:
                ui = self.ui_cache.get(sig) or {}
                self._send_executed(ctx, node_id, ui.get("output"))
            ctx["progress"].finish(node_id)
            return
        ctx["progress"].start(node_id)
        if self.client_id is not None:
            self.last_node_id = node_id
            self.sim.hub.send("executing", self._node_msg(ctx, node_id), self.client_id)
        self.check_interrupt()
        inputs = self._resolve_inputs(ctx, node)
        ctx["current_inputs"] = {k: [_fmt_input(v)] for k, v in node.get("inputs", {}).items()
                                 if not is_link(v)}
        if ctx["failing"]:
            raise SimulatedFailure("Simulated failure injected by fake ComfyUI (fail_prompt)")
        behaviour = BEHAVIOURS[self.sim.nodes[node["class_type"]].behaviour or node["class_type"]]
        outputs, ui = await behaviour(NodeRuntime(self, ctx, node_id), node_id, inputs)
        self.outputs_cache[sig] = outputs
        if ui is not None:
            meta = {"node_id": node_id, "display_node": node_id, "parent_node": None,
                    "real_node_id": node_id}
            self.ui_cache[sig] = {"output": ui, "meta": meta}
            if self.client_id is not None:
                self._send_executed(ctx, node_id, ui)
        ctx["executed"].append(node_id)
        ctx["progress"].finish(node_id)

    def _send_executed(self, ctx, node_id: str, output) -> None:
        """``executed`` with ComfyUI's key order (node, display_node, output, prompt_id)."""
        self.sim.hub.send("executed", {"node": node_id, "display_node": node_id, "output": output,
                                       "prompt_id": ctx["prompt_id"]}, self.client_id)

    def _resolve_inputs(self, ctx, node: dict) -> dict:
        values = {}
        for name, value in node.get("inputs", {}).items():
            if is_link(value):
                src_sig = ctx["sigs"][str(value[0])]
                values[name] = self.outputs_cache[src_sig][value[1]]
            elif isinstance(value, dict) and "__value__" in value:
                values[name] = value["__value__"]
            else:
                values[name] = value
        return values

    def check_interrupt(self) -> None:
        if self.interrupt_flag:
            self.interrupt_flag = False
            raise Interrupted()

    def _report_error(self, ctx, node_id: Optional[str], ex: BaseException) -> None:
        prompt_id = ctx["prompt_id"]
        class_type = ctx["prompt"].get(node_id, {}).get("class_type") if node_id else None
        executed = list(reversed(ctx["executed"]))
        if isinstance(ex, Interrupted):
            self._add_message(ctx, "execution_interrupted", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": class_type,
                "executed": executed}, True)
            log.debug("prompt %s interrupted at node %s", prompt_id, node_id)
            return
        log.debug("prompt %s failed at node %s: %s", prompt_id, node_id, ex)
        self._add_message(ctx, "execution_error", {
            "prompt_id": prompt_id, "node_id": node_id, "node_type": class_type,
            "executed": executed, "exception_message": f"{ex}\n",
            "exception_type": _type_name(ex),
            "traceback": traceback.format_tb(ex.__traceback__),
            "current_inputs": ctx.get("current_inputs", {}),
            "current_outputs": list(reversed(list(ctx["prompt"]))),
        }, False)


class NodeRuntime:
    """What a node behaviour may do while it runs (see noderun.py)."""

    def __init__(self, engine: Engine, ctx: dict, node_id: str):
        self.engine = engine
        self.sim = engine.sim
        self.ctx = ctx
        self.node_id = node_id

    async def work(self, units: float) -> None:
        seconds = units * self.sim.node_seconds / self.sim.speed
        if seconds > 0:
            await asyncio.sleep(seconds)

    def check_interrupt(self) -> None:
        self.engine.check_interrupt()

    def input_path(self, name: str):
        return self.sim.resolve_input_path(name)

    def send_text(self, node_id: str, text: str) -> None:
        self.sim.hub.send_text(node_id, text)

    async def progress(self, value, maximum, preview=None) -> None:
        """ComfyUI's progress hook: progress_state, [type 4], progress, [type 1]."""
        hub = self.sim.hub
        client_id = self.engine.client_id
        prompt_id = self.ctx["prompt_id"]
        self.ctx["progress"].update(self.node_id, value, maximum)
        with_meta = preview is not None and hub.supports_metadata(client_id)
        if with_meta:
            nid = self.node_id
            hub.send_preview(preview, client_id, {
                "node_id": nid, "prompt_id": prompt_id, "display_node_id": nid,
                "parent_node_id": None, "real_node_id": nid, "image_type": "image/png"})
        hub.send("progress", {"value": value, "max": maximum, "prompt_id": prompt_id,
                              "node": self.node_id}, client_id)
        if preview is not None and not with_meta:
            hub.send_preview(preview, client_id, None)
        await asyncio.sleep(0)

    async def save_images(self, img, prefix: Optional[str], kind: str) -> List[dict]:
        """Write ``img.batch`` PNGs; return the UI image list."""
        base = self.sim.output_dir if kind == "output" else self.sim.temp_dir
        if prefix is None:
            prefix = temp_prefix()
        subfolder, stem = split_prefix(str(prefix))
        folder = base / subfolder if subfolder else base
        pil = img.render()
        results = []
        key = (str(folder), stem)
        counter = self.sim.file_counters.get(key) or next_counter(folder, stem)
        for _ in range(img.batch):
            while (folder / f"{stem}_{counter:05}_.png").exists():
                counter += 1
            name = f"{stem}_{counter:05}_.png"
            self.sim.file_counters[key] = counter + 1
            await asyncio.to_thread(write_png, folder / name, pil, self.ctx["prompt"],
                                    self.ctx["extra_data"].get("extra_pnginfo"))
            results.append({"filename": name, "subfolder": subfolder, "type": kind})
            counter += 1
        return results

