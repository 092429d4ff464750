"""GET /api/openapi.json: an OpenAPI 3 description of the gateway's HTTP API, built from one table."""

from __future__ import annotations

# (method, path, summary, tag, request body schema or None, success status)
_ENDPOINTS = [
    ("post", "/api/prompt", "Queue a workflow (ComfyUI body plus priority and webhook)", "ComfyUI", "PromptRequest", 200),
    ("get", "/api/prompt", "Cluster queue_remaining", "ComfyUI", None, 200),
    ("get", "/api/queue", "Merged queue: running and pending items in ComfyUI's 5-element form", "ComfyUI", None, 200),
    ("post", "/api/queue", "Delete listed jobs or clear every pending job", "ComfyUI", "QueueChange", 200),
    ("post", "/api/interrupt", "Interrupt a running job (prompt_id) or every running job", "ComfyUI", None, 200),
    ("post", "/api/free", "Ask every worker to unload models / free memory", "ComfyUI", None, 200),
    ("get", "/api/history", "Finished jobs (max_items, offset)", "ComfyUI", None, 200),
    ("get", "/api/history/{prompt_id}", "One finished job, file entries with a gateway url", "ComfyUI", None, 200),
    ("get", "/api/view", "Download a file (streamed, Range supported)", "ComfyUI", None, 200),
    ("post", "/api/upload/image", "Upload an input image (multipart: image, type, subfolder, overwrite)", "ComfyUI",
     None, 200),
    ("post", "/api/upload/mask", "Upload a mask applied to original_ref", "ComfyUI", None, 200),
    ("get", "/api/object_info", "Node types of every online worker, merged", "ComfyUI", None, 200),
    ("get", "/api/object_info/{node_class}", "One node type", "ComfyUI", None, 200),
    ("get", "/api/system_stats", "System of one worker, devices of all", "ComfyUI", None, 200),
    ("get", "/api/features", "Feature flags of a worker", "ComfyUI", None, 200),
    ("get", "/api/extensions", "Frontend extensions of a worker", "ComfyUI", None, 200),
    ("get", "/api/embeddings", "Embeddings of all workers", "ComfyUI", None, 200),
    ("get", "/api/models", "Model folders of all workers", "ComfyUI", None, 200),
    ("get", "/api/models/{folder}", "Model files of all workers in a folder", "ComfyUI", None, 200),
    ("get", "/api/jobs", "Jobs of the cluster, newer ComfyUI's shape (status, sort, limit, offset)", "ComfyUI", None,
     200),
    ("get", "/api/jobs/{prompt_id}", "One job with outputs and workflow", "ComfyUI", None, 200),
    ("post", "/api/jobs/{prompt_id}/cancel", "Interrupt or drop a job", "ComfyUI", None, 200),
    ("post", "/api/jobs/cancel", "Cancel several jobs ({job_ids})", "ComfyUI", None, 200),
    ("get", "/comfy/", "The ComfyUI editor of the cluster (its files come from an online worker)", "Editor", None,
     200),
    ("post", "/comfy/login", "Sign the editor in: Bearer key -> HttpOnly cookie", "Editor", None, 200),
    ("delete", "/comfy/login", "Forget the editor's cookie", "Editor", None, 204),
    ("get", "/comfy/api/users", "The editor's user mode (single user)", "Editor", None, 200),
    ("get", "/comfy/api/settings", "The editor's settings, kept by the gateway", "Editor", None, 200),
    ("post", "/comfy/api/settings", "Merge settings (JSON object)", "Editor", None, 200),
    ("get", "/comfy/api/settings/{id}", "One editor setting", "Editor", None, 200),
    ("post", "/comfy/api/settings/{id}", "Store one editor setting (any JSON value)", "Editor", None, 200),
    ("get", "/comfy/api/userdata", "Files in a user-data folder (dir, recurse, split, full_info)", "Editor", None,
     200),
    ("get", "/comfy/api/v2/userdata", "Folders and files below a path", "Editor", None, 200),
    ("get", "/comfy/api/userdata/{file}", "A stored file (saved workflow, ...)", "Editor", None, 200),
    ("post", "/comfy/api/userdata/{file}", "Store a file (overwrite, full_info)", "Editor", None, 200),
    ("delete", "/comfy/api/userdata/{file}", "Delete a stored file", "Editor", None, 204),
    ("post", "/comfy/api/userdata/{file}/move/{dest}", "Move or rename a stored file", "Editor", None, 200),
    ("get", "/comfy/api/i18n", "Custom node translations of every worker", "Editor", None, 200),
    ("get", "/comfy/api/workflow_templates", "Custom node example workflows of every worker", "Editor", None, 200),
    ("get", "/comfy/api/experiment/models", "Model folders of every worker (model browser)", "Editor", None, 200),
    ("get", "/comfy/api/global_subgraphs", "Blueprint subgraphs of every worker", "Editor", None, 200),
    ("get", "/api/workers", "List workers with live state", "Workers", None, 200),
    ("post", "/api/workers", "Register a worker", "Workers", "WorkerFields", 201),
    ("post", "/api/workers/test", "Try a URL and credentials before registering", "Workers", "WorkerFields", 200),
    ("get", "/api/workers/{id}", "One worker", "Workers", None, 200),
    ("patch", "/api/workers/{id}", "Change a worker", "Workers", "WorkerFields", 200),
    ("delete", "/api/workers/{id}", "Remove a worker", "Workers", None, 200),
    ("post", "/api/workers/{id}/test", "Check a worker now", "Workers", None, 200),
    ("post", "/api/workers/{id}/refresh", "Re-read a worker's object_info", "Workers", None, 200),
    ("get", "/api/task/{prompt_id}/status", "Job status: queued, running, done or failed", "Jobs", None, 200),
    ("patch", "/api/task/{prompt_id}", "Change the priority of a queued job", "Jobs", None, 200),
    ("get", "/api/task/gateway/{gateway_job_id}", "Job status by gateway_job_id", "Jobs", None, 200),
    ("get", "/api/tasks", "Paged job list (state, worker, client_id, since, until, limit, offset)", "Jobs", None, 200),
    ("get", "/api/stats", "Counts and per-minute throughput of the last hour", "Gateway", None, 200),
    ("get", "/api/settings", "Runtime settings", "Gateway", None, 200),
    ("patch", "/api/settings", "Change runtime settings", "Gateway", None, 200),
    ("get", "/api/dispatch", "Whether dispatching is paused", "Gateway", None, 200),
    ("post", "/api/dispatch", "Pause or resume dispatching", "Gateway", None, 200),
    ("get", "/healthz", "Liveness and a cluster summary", "Gateway", None, 200),
    ("get", "/metrics", "Prometheus metrics", "Gateway", None, 200),
]

_SCHEMAS = {
    "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}}}}},
    "PromptRequest": {"type": "object", "required": ["prompt"], "properties": {
        "prompt": {"type": "object"}, "client_id": {"type": "string"}, "extra_data": {"type": "object"},
        "front": {"type": "boolean"}, "number": {"type": "number"}, "prompt_id": {"type": "string"},
        "priority": {"type": "integer"}, "webhook": {"type": "string", "format": "uri"}}},
    "QueueChange": {"type": "object", "properties": {"clear": {"type": "boolean"},
                                                     "delete": {"type": "array", "items": {"type": "string"}}}},
    "WorkerFields": {"type": "object", "properties": {
        "url": {"type": "string"}, "name": {"type": "string"}, "weight": {"type": "number"},
        "enabled": {"type": "boolean"}, "draining": {"type": "boolean"}, "max_queue": {"type": "integer"},
        "auth_username": {"type": "string"}, "auth_password": {"type": "string", "writeOnly": True}}},
}


def _parameters(path: str) -> list:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names]


def openapi_document(version: str) -> dict:
    """The OpenAPI document."""
    paths: dict = {}
    for method, path, summary, tag, body, status in _ENDPOINTS:
        operation: dict = {"summary": summary, "tags": [tag], "parameters": _parameters(path),
                           "responses": {str(status): {"description": "OK"},
                                         "400": {"description": "Bad input",
                                                 "content": {"application/json": {"schema": {
                                                     "$ref": "#/components/schemas/Error"}}}}}}
        if body:
            operation["requestBody"] = {"content": {"application/json": {"schema": {
                "$ref": f"#/components/schemas/{body}"}}}}
        paths.setdefault(path, {})[method] = operation
    return {"openapi": "3.0.3", "info": {"title": "comfyui-gateway", "version": version},
            "paths": paths, "components": {"schemas": _SCHEMAS}}
