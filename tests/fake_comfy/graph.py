"""Graph helpers for execution: cache signatures and ComfyUI's node staging order.

* ``signatures`` gives every node an input signature (class, literal inputs and
  the signatures of linked ancestors); equal signatures mean "cacheable".
* :class:`ExecutionList` reproduces ComfyUI's staging: outputs are added in
  order, dependencies that are cached are not staged, and among ready nodes an
  output node (or a node feeding one) is picked first.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Callable, Dict, List, Optional

from .noderun import ALWAYS_RUN, FILE_HASHED


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def signatures(prompt: dict, file_hash: Callable[[str], str]) -> Dict[str, str]:
    """Map node id -> signature string for every node of ``prompt``."""
    sigs: Dict[str, str] = {}

    def sig(node_id: str, stack=()) -> str:
        if node_id in sigs:
            return sigs[node_id]
        node = prompt.get(node_id)
        if node is None or node_id in stack:
            return f"missing:{node_id}"
        class_type = node.get("class_type")
        parts = [class_type]
        if class_type in ALWAYS_RUN:
            parts.append(f"changed:{time.time_ns()}:{node_id}")
        if class_type in FILE_HASHED:
            parts.append(file_hash(str(node.get("inputs", {}).get(FILE_HASHED[class_type]))))
        for name in sorted(node.get("inputs", {})):
            value = node["inputs"][name]
            if is_link(value):
                parts.append([name, "link", sig(str(value[0]), stack + (node_id,)), value[1]])
            else:
                parts.append([name, value])
        digest = hashlib.sha1(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()
        sigs[node_id] = digest
        return digest

    for nid in prompt:
        sig(nid)
    return sigs


class ExecutionList:
    """Nodes staged for one prompt, released in ComfyUI's order."""

    def __init__(self, prompt: dict, is_output: Callable[[str], bool],
                 is_cached: Callable[[str], bool]):
        self.prompt = prompt
        self.is_output = is_output
        self.is_cached = is_cached
        self.pending: Dict[str, bool] = {}
        self.block_count: Dict[str, int] = {}
        self.blocking: Dict[str, Dict[str, bool]] = {}

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links = []
        while stack:
            unique_id = stack.pop()
            if unique_id in self.pending:
                continue
            self.pending[unique_id] = True
            self.block_count[unique_id] = 0
            self.blocking[unique_id] = {}
            for value in self.prompt[unique_id].get("inputs", {}).values():
                if is_link(value):
                    src = str(value[0])
                    if not self.is_cached(src):
                        stack.append(src)
                        links.append((src, unique_id))
        for src, dst in links:
            if dst not in self.blocking[src]:
                self.blocking[src][dst] = True
                self.block_count[dst] += 1

    def next_node(self) -> Optional[str]:
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            return None
        for node_id in ready:
            if self.is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self.is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for b in self.blocking[node_id]:
                if any(self.is_output(b2) for b2 in self.blocking[b]):
                    return node_id
        return ready[0]

    def complete(self, node_id: str) -> None:
        self.pending.pop(node_id, None)
        for blocked in self.blocking.pop(node_id, {}):
            self.block_count[blocked] -= 1

    def __bool__(self) -> bool:
        return bool(self.pending)


def execution_order_preview(prompt: dict, outputs: List[str], is_output) -> List[str]:
    """Order in which an uncached prompt would run (used by tests/helpers)."""
    elist = ExecutionList(prompt, is_output, lambda _n: False)
    for out in outputs:
        elist.add_node(out)
    order = []
    while elist:
        node = elist.next_node()
        order.append(node)
        elist.complete(node)
    return order
