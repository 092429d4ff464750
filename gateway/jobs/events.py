"""How a worker's WebSocket events change a job: state, progress and error (pure functions)."""

from __future__ import annotations

from typing import Any

from .model import DONE, FAILED, RUNNING, SUBMITTED, Job

# What each event means for the job's outcome once `executing` with node null arrives.
OUTCOME_SUCCESS, OUTCOME_ERROR, OUTCOME_INTERRUPTED = "success", "error", "interrupted"


def needed_nodes(prompt: dict, outputs: list) -> set:
    """Nodes ComfyUI will execute for these output nodes: the outputs and everything they link to."""
    seen: set = set()
    stack = [str(node) for node in outputs]
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id not in prompt:
            continue
        seen.add(node_id)
        for value in (prompt[node_id].get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                stack.append(str(value[0]))
    return seen


def output_nodes(prompt: dict, object_info: dict | None, targets: list | None = None) -> list:
    """The output node ids ComfyUI would list as outputs_to_execute."""
    if targets:
        return [str(t) for t in targets if str(t) in prompt]
    out = []
    for node_id, node in prompt.items():
        info = (object_info or {}).get(node.get("class_type") if isinstance(node, dict) else None) or {}
        if info.get("output_node"):
            out.append(str(node_id))
    return out


def apply_event(job: Job, event_type: str, data: dict, now: float) -> str | None:
    """Update job from one event; returns 'started', 'progress', 'finished' or None (nothing changed)."""
    progress = job.progress
    if event_type == "execution_start":
        job.outcome = None
        return _start(job, now)
    if event_type == "execution_cached":
        nodes = {str(n) for n in data.get("nodes") or []}
        progress.cached_nodes |= nodes
        progress.done_nodes |= nodes
        return _start(job, now) or "progress"
    if event_type == "executing":
        node = data.get("node")
        if node is None:
            return "finished"
        if progress.node is not None and progress.node != str(node):
            progress.done_nodes.add(progress.node)
        progress.node, progress.value, progress.max = str(node), 0.0, 0.0
        return _start(job, now) or "progress"
    if event_type == "progress":
        progress.node = str(data.get("node")) if data.get("node") is not None else progress.node
        progress.value, progress.max = data.get("value", 0) or 0, data.get("max", 0) or 0
        return _start(job, now) or "progress"
    if event_type == "progress_state":
        _apply_progress_state(progress, data.get("nodes") or {})
        return _start(job, now) or "progress"
    if event_type == "executed":
        if data.get("node") is not None:
            progress.done_nodes.add(str(data["node"]))
        return "progress"
    if event_type == "execution_success":
        job.outcome = OUTCOME_SUCCESS
        return "progress"
    if event_type == "execution_error":
        job.outcome = OUTCOME_ERROR
        job.error = _execution_error(data)
        return "progress"
    if event_type == "execution_interrupted":
        job.outcome = OUTCOME_INTERRUPTED
        kind = "cancelled" if job.cancel_requested == "cancelled" else "interrupted"
        job.error = {"type": kind, "message": f"the job was {kind} at node {data.get('node_id')}",
                     "node_id": data.get("node_id"), "node_type": data.get("node_type"),
                     "executed": data.get("executed", [])}
        return "progress"
    return None


def _execution_error(data: dict) -> dict:
    """The job error for ComfyUI's execution_error payload (live event or history message)."""
    return {"type": "execution_error", "message": str(data.get("exception_message", "")).strip(),
            **{k: v for k, v in data.items() if k not in ("prompt_id", "timestamp")}}


def _start(job: Job, now: float) -> str | None:
    if job.state == SUBMITTED:
        job.state = RUNNING  # same worker: the per-worker index stays valid
        job.started_at = job.started_at or now
        return "started"
    return None


def _apply_progress_state(progress: Any, nodes: dict) -> None:
    for node_id, info in nodes.items():
        state = info.get("state")
        if state == "finished":
            progress.done_nodes.add(str(node_id))
        elif state == "running":
            progress.node = str(node_id)
            progress.value, progress.max = info.get("value", 0) or 0, info.get("max", 0) or 0


def outcome_from_history(entry: dict) -> tuple[str, dict | None]:
    """(final state, error) read from a ComfyUI history entry."""
    status = entry.get("status") or {}
    if status.get("status_str") == "success" or (status.get("completed") and not status.get("status_str")):
        return DONE, None
    for name, data in status.get("messages") or []:
        if name == "execution_error":
            return FAILED, _execution_error(data)
        if name == "execution_interrupted":
            return FAILED, {"type": "interrupted", "message": "the job was interrupted",
                            "node_id": data.get("node_id"), "node_type": data.get("node_type")}
    return FAILED, {"type": "execution_error", "message": "the worker reported the job as failed"}
