"""Parse and check the body of POST /prompt (ComfyUI fields plus the gateway's priority and webhook)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import BadRequest, comfy_400
from ..security.addresses import forbidden_address

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class PromptRequest:
    """A checked POST /prompt body."""

    prompt: dict
    client_id: str | None
    extra_data: dict
    number: float | None
    front: bool
    priority: int
    priority_given: bool
    webhook: str | None
    partial_execution_targets: list | None
    prompt_id: str | None = None

    def worker_body(self) -> dict:
        """What the job stores and later sends on (without gateway-only fields)."""
        body: dict[str, Any] = {"prompt": self.prompt, "extra_data": self.extra_data}
        if self.partial_execution_targets is not None:
            body["partial_execution_targets"] = self.partial_execution_targets
        return body


def parse_prompt_request(body: Any) -> PromptRequest:
    """Check a POST /prompt body; ComfyError for ComfyUI's own 400s, BadRequest for gateway fields."""
    if not isinstance(body, dict):
        raise comfy_400("invalid_prompt", "The request body must be a JSON object", "")
    prompt = body.get("prompt")
    if prompt is None:
        raise comfy_400("no_prompt", "No prompt provided", "No prompt provided")
    if not isinstance(prompt, dict):
        raise comfy_400("invalid_prompt", "The prompt must be a JSON object of nodes", "")
    if not prompt:  # no nodes, so no output node: ComfyUI's answer, known without asking any worker
        raise comfy_400("prompt_no_outputs", "Prompt has no outputs", "")
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            raise comfy_400("invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                            f"Node ID '#{node_id}'")
        if not isinstance(node["class_type"], str):
            raise comfy_400("invalid_prompt", f"Cannot execute because node {node_id} has a class_type that is "
                            "not a string.", f"Node ID '#{node_id}'")
        if not isinstance(node.get("inputs", {}), dict):
            raise comfy_400("invalid_prompt", f"Cannot execute because the inputs of node {node_id} are not an "
                            "object of input names to values.", f"Node ID '#{node_id}'")
    client_id = body.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        client_id = str(client_id)
    extra_data = body.get("extra_data") or {}
    if not isinstance(extra_data, dict):
        raise BadRequest("field 'extra_data' must be an object", extra={"field": "extra_data"})
    extra_data = dict(extra_data)
    if client_id is None and isinstance(extra_data.get("client_id"), str):
        client_id = extra_data["client_id"]
    extra_data.pop("client_id", None)
    number = body.get("number")
    if number is not None:
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise BadRequest("field 'number' must be a number", extra={"field": "number"})
        number = float(number)
    priority_given = body.get("priority") is not None
    priority = body.get("priority", 0) if priority_given else 0
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1_000_000:
        raise BadRequest("field 'priority' must be an integer (bigger runs first)", extra={"field": "priority"})
    webhook = body.get("webhook")
    if webhook is not None:
        parts = urlsplit(webhook) if isinstance(webhook, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.netloc or len(webhook) > 1024:
            raise BadRequest("field 'webhook' must be an http(s) URL", extra={"field": "webhook"})
        try:
            host = parts.hostname or ""
            parts.port  # noqa: B018  (raises for a port that is not a number)
        except ValueError:
            raise BadRequest("field 'webhook' has an invalid port", extra={"field": "webhook"}) from None
        if not host or any(c.isspace() for c in webhook) or forbidden_address(host):
            raise BadRequest("field 'webhook' must name a reachable host (link-local and metadata addresses "
                             "are refused)", extra={"field": "webhook"})
    targets = body.get("partial_execution_targets")
    if targets is not None and not isinstance(targets, list):
        raise BadRequest("field 'partial_execution_targets' must be a list of node ids",
                         extra={"field": "partial_execution_targets"})
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and (not isinstance(prompt_id, str) or not UUID_RE.match(prompt_id)):
        raise comfy_400("invalid_prompt_id", "prompt_id must be a valid UUID")
    return PromptRequest(prompt_id=prompt_id, prompt=prompt, client_id=client_id, extra_data=extra_data, number=number,
                         front=bool(body.get("front")), priority=priority, priority_given=priority_given,
                         webhook=webhook, partial_execution_targets=targets)
