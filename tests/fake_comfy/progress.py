"""Per-prompt progress registry producing ``progress_state`` messages.

Mirrors 0.3.64: an entry is created lazily as ``pending`` with integer
value/max (0/1); ``start`` sets floats 0.0/1.0, ``update`` stores the values as
given (ints from progress bars), ``finish`` sets value = max.  Every change
sends all non-pending nodes, in first-touched order.
"""

from __future__ import annotations

from typing import Callable, Dict


class ProgressRegistry:
    """Node progress of one prompt."""

    def __init__(self, prompt_id: str, send: Callable[[dict], None]):
        self.prompt_id = prompt_id
        self.send = send
        self.nodes: Dict[str, dict] = {}

    def _entry(self, node_id: str) -> dict:
        if node_id not in self.nodes:
            self.nodes[node_id] = {"state": "pending", "value": 0, "max": 1}
        return self.nodes[node_id]

    def start(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="running", value=0.0, max=1.0)
        self._publish()

    def update(self, node_id: str, value, maximum) -> None:
        entry = self._entry(node_id)
        entry.update(state="running", value=value, max=maximum)
        self._publish()

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry["state"] = "finished"
        entry["value"] = entry["max"]
        self._publish()

    def _publish(self) -> None:
        nodes = {}
        for node_id, entry in self.nodes.items():
            if entry["state"] == "pending":
                continue
            nodes[node_id] = {
                "value": entry["value"], "max": entry["max"], "state": entry["state"],
                "node_id": node_id, "prompt_id": self.prompt_id, "display_node_id": node_id,
                "parent_node_id": None, "real_node_id": node_id,
            }
        self.send({"prompt_id": self.prompt_id, "nodes": nodes})
