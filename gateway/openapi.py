"""GET /api/openapi.json: an OpenAPI 3 description of the gateway's HTTP API, built from one table.

Every operation documents its body, its query parameters and its error answers: the gateway's own
routes answer errors as {"error": {"type", "message"}}; ComfyUI's routes keep ComfyUI's shapes (JSON,
or an empty body where ComfyUI sends one). tests/test_fuzz_openapi.py fuzzes the API from this document.
"""

from __future__ import annotations

GATEWAY, COMFY, COMFY_EMPTY, COMFY_TEXT = "gateway", "comfy", "comfy-empty", "comfy-text"  # how errors look

# (method, path, summary, tag, request body schema or None, success status, error style, query parameters)
_ENDPOINTS = [
    ("post", "/api/prompt", "Queue a workflow (ComfyUI body plus priority, webhook and wait)", "ComfyUI",
     "PromptRequest", 200, COMFY, (("wait", "number"),)),
    ("get", "/api/prompt", "Cluster queue_remaining", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/queue", "Merged queue: running and pending items in ComfyUI's 5-element form", "ComfyUI", None, 200,
     COMFY, ()),
    ("post", "/api/queue", "Delete listed jobs or clear every pending job (clear: admin)", "ComfyUI", "QueueChange",
     200, COMFY, ()),
    ("post", "/api/interrupt", "Interrupt a running job (prompt_id) or every running job (admin)", "ComfyUI",
     "Interrupt", 200, COMFY, ()),
    ("post", "/api/free", "Ask every worker to unload models / free memory (admin)", "ComfyUI", "Free", 200, COMFY,
     ()),
    ("get", "/api/history", "Finished jobs (max_items, offset)", "ComfyUI", None, 200, COMFY,
     (("max_items", "integer"), ("offset", "integer"))),
    ("post", "/api/history", "Delete or clear history on the workers (admin)", "ComfyUI", "QueueChange", 200, COMFY,
     ()),
    ("get", "/api/history/{prompt_id}", "One finished job, file entries with a gateway url", "ComfyUI", None, 200,
     COMFY, ()),
    ("get", "/api/view", "Download a file (streamed, Range supported)", "ComfyUI", None, 200, COMFY_EMPTY,
     (("filename", "string"), ("subfolder", "string"), ("type", "string"), ("prompt_id", "string"))),
    ("post", "/api/upload/image", "Upload an input image (multipart: image, type, subfolder, overwrite)", "ComfyUI",
     "Upload", 200, COMFY_EMPTY, ()),
    ("post", "/api/upload/mask", "Upload a mask applied to original_ref", "ComfyUI", "Upload", 200, COMFY_EMPTY, ()),
    ("get", "/api/object_info", "Node types of every online worker, merged", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/object_info/{node_class}", "One node type", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/system_stats", "System of one worker, devices of all", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/features", "Feature flags of a worker", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/extensions", "Frontend extensions of a worker", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/embeddings", "Embeddings of all workers", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/models", "Model folders of all workers", "ComfyUI", None, 200, COMFY, ()),
    ("get", "/api/models/{folder}", "Model files of all workers in a folder", "ComfyUI", None, 200, COMFY_EMPTY, ()),
    ("get", "/api/jobs", "Jobs of the cluster, newer ComfyUI's shape (status, sort_order, limit, offset)", "ComfyUI",
     None, 200, COMFY, (("status", "string"), ("sort_order", "string"), ("limit", "integer"),
                        ("offset", "integer"))),
    ("get", "/api/jobs/{prompt_id}", "One job with outputs and workflow", "ComfyUI", None, 200, COMFY, ()),
    ("post", "/api/jobs/{prompt_id}/cancel", "Interrupt or drop a job", "ComfyUI", None, 200, COMFY, ()),
    ("post", "/api/jobs/cancel", "Cancel several jobs ({job_ids})", "ComfyUI", "JobIds", 200, COMFY, ()),
    ("post", "/comfy/login", "Sign the editor in: Bearer key -> HttpOnly cookie", "Editor", None, 200, GATEWAY, ()),
    ("delete", "/comfy/login", "Forget the editor's cookie", "Editor", None, 204, GATEWAY, ()),
    ("get", "/comfy/api/users", "The editor's user mode (single user)", "Editor", None, 200, COMFY_TEXT, ()),
    ("get", "/comfy/api/settings", "The editor's settings, kept by the gateway", "Editor", None, 200, COMFY_TEXT, ()),
    ("post", "/comfy/api/settings", "Merge settings (JSON object)", "Editor", "EditorSettings", 200, COMFY_TEXT, ()),
    ("get", "/comfy/api/settings/{id}", "One editor setting", "Editor", None, 200, COMFY_TEXT, ()),
    ("post", "/comfy/api/settings/{id}", "Store one editor setting (any JSON value)", "Editor", "AnyJson", 200,
     COMFY_TEXT, ()),
    ("get", "/comfy/api/userdata", "Files in a user-data folder", "Editor", None, 200, COMFY_TEXT,
     (("dir", "string"), ("recurse", "string"), ("split", "string"), ("full_info", "string"))),
    ("get", "/comfy/api/v2/userdata", "Folders and files below a path", "Editor", None, 200, COMFY_TEXT,
     (("path", "string"),)),
    ("get", "/comfy/api/userdata/{file}", "A stored file (saved workflow, ...)", "Editor", None, 200, COMFY_TEXT, ()),
    ("post", "/comfy/api/userdata/{file}", "Store a file (overwrite, full_info)", "Editor", "AnyJson", 200, COMFY_TEXT,
     (("overwrite", "string"), ("full_info", "string"))),
    ("delete", "/comfy/api/userdata/{file}", "Delete a stored file", "Editor", None, 204, COMFY_TEXT, ()),
    ("post", "/comfy/api/userdata/{file}/move/{dest}", "Move or rename a stored file", "Editor", None, 200, COMFY_TEXT,
     (("overwrite", "string"), ("full_info", "string"))),
    ("get", "/comfy/api/i18n", "Custom node translations of every worker", "Editor", None, 200, COMFY_TEXT, ()),
    ("get", "/comfy/api/workflow_templates", "Custom node example workflows of every worker", "Editor", None, 200,
     COMFY_TEXT, ()),
    ("get", "/comfy/api/experiment/models", "Model folders of every worker (model browser)", "Editor", None, 200,
     COMFY_TEXT, ()),
    ("get", "/comfy/api/global_subgraphs", "Blueprint subgraphs of every worker", "Editor", None, 200, COMFY_TEXT, ()),
    ("get", "/api/workers", "List workers with live state", "Workers", None, 200, GATEWAY, ()),
    ("post", "/api/workers", "Register a worker (admin)", "Workers", "WorkerFields", 201, GATEWAY, ()),
    ("post", "/api/workers/test", "Try a URL and credentials before registering (admin)", "Workers", "WorkerFields",
     200, GATEWAY, ()),
    ("get", "/api/workers/{id}", "One worker", "Workers", None, 200, GATEWAY, ()),
    ("patch", "/api/workers/{id}", "Change a worker (admin; a new origin drops its password)", "Workers",
     "WorkerFields", 200, GATEWAY, ()),
    ("delete", "/api/workers/{id}", "Remove a worker (admin)", "Workers", None, 200, GATEWAY, ()),
    ("post", "/api/workers/{id}/test", "Check a worker now (admin)", "Workers", None, 200, GATEWAY, ()),
    ("post", "/api/workers/{id}/refresh", "Re-read a worker's object_info (admin)", "Workers", None, 200, GATEWAY,
     ()),
    ("get", "/api/task/{prompt_id}/status", "Job status: queued, running, done or failed (wait: long poll)", "Jobs",
     None, 200, GATEWAY, (("wait", "number"),)),
    ("get", "/api/task/{prompt_id}/timeline", "A job's timeline: queued, sent to a worker, started, worker lost, "
     "back in the queue, done or failed, with times", "Jobs", None, 200, GATEWAY, ()),
    ("patch", "/api/task/{prompt_id}", "Change the priority of a queued job", "Jobs", "Priority", 200, GATEWAY, ()),
    ("get", "/api/task/gateway/{gateway_job_id}", "Job status by gateway_job_id", "Jobs", None, 200, GATEWAY, ()),
    ("get", "/api/tasks", "Paged job list (state, worker, client_id, q: id prefix, since, until, limit, offset)",
     "Jobs", None, 200,
     GATEWAY, (("state", "string"), ("worker", "string"), ("client_id", "string"), ("q", "string"), ("since", "number"),
               ("until", "number"), ("limit", "integer"), ("offset", "integer"))),
    ("get", "/api/tasks/queue", "Jobs waiting in the gateway in dispatch order, with their position", "Jobs", None,
     200, GATEWAY, (("limit", "integer"), ("offset", "integer"))),
    ("post", "/api/tasks/resubmit", "Submit finished jobs' workflows again as new jobs (admin)", "Jobs",
     "Resubmit", 200, GATEWAY, ()),
    ("get", "/api/stats", "Counts and per-minute throughput of the last hour", "Gateway", None, 200, GATEWAY, ()),
    ("get", "/api/stats/workers", "Per-worker statistics of the last hour (done, failed, jobs per hour, busy %, "
     "mean run time, uptime, last seen)", "Gateway", None, 200, GATEWAY, ()),
    ("get", "/api/settings", "Runtime settings", "Gateway", None, 200, GATEWAY, ()),
    ("patch", "/api/settings", "Change runtime settings (admin)", "Gateway", "SettingsChange", 200, GATEWAY, ()),
    ("get", "/api/dispatch", "Whether dispatching is paused", "Gateway", None, 200, GATEWAY, ()),
    ("post", "/api/dispatch", "Pause or resume dispatching (admin)", "Gateway", "Dispatch", 200, GATEWAY, ()),
    ("get", "/api/cluster", "Instances of the cluster, the dispatcher lease and the Redis link", "Gateway", None, 200,
     GATEWAY, ()),
    ("get", "/api/ui/speeds", "Measured speed of each worker (the admin page's charts)", "Gateway", None, 200,
     GATEWAY, ()),
    ("get", "/healthz", "Liveness and a cluster summary", "Gateway", None, 200, GATEWAY, ()),
    ("get", "/metrics", "Prometheus metrics", "Gateway", None, 200, GATEWAY, ()),
]

# Query parameters that need more than a type: their schema and what they mean.
_WAIT_TEXT = ("Seconds to wait, cut to the max_wait_seconds setting (300 by default; 0 turns waiting off). ")
_QUERY_DETAILS = {
    ("/api/tasks", "q"): {"schema": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}$"}, "description":
        "Only jobs whose prompt_id or gateway_job_id starts with this (case-insensitive)."},
    ("/api/prompt", "wait"): {"schema": {"type": "number", "minimum": 0}, "description": _WAIT_TEXT + (
        "The answer comes when the job ends (200: the submit answer plus state, outputs with download urls, "
        "status, meta, files, error and job, as in a history entry), or at the timeout with the current "
        "status (202: the submit answer plus state and job). Same as the body field wait.")},
    ("/api/task/{prompt_id}/status", "wait"): {"schema": {"type": "number", "minimum": 0}, "description":
        _WAIT_TEXT + "Long poll: the answer comes when the job's state changes (at once when it is done or "
                     "failed), else after this many seconds with the state unchanged."},
}
# Answers besides the success status and the 4xx errors.
_MORE_RESPONSES = {
    ("post", "/api/prompt"): {"202": {"description": "With wait: the job was accepted and has not ended yet "
                                                     "(the submit answer plus state and job, its status)"}},
}

_ERROR_BODY = {"type": "object", "required": ["type", "message"], "properties": {
    "type": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}

_SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": _ERROR_BODY}},
    # ComfyUI's error answers: {"error": {...}, "node_errors": {...}} for /prompt, {"error": "..."} for its 409.
    "ComfyError": {"type": "object", "required": ["error"], "properties": {
        "error": {"oneOf": [_ERROR_BODY, {"type": "string"}]}, "node_errors": {"type": "object"}}},
    "PromptRequest": {"type": "object", "required": ["prompt"], "properties": {
        "prompt": {"type": "object"}, "client_id": {"type": "string"}, "extra_data": {"type": "object"},
        "front": {"type": "boolean"}, "number": {"type": "number"}, "prompt_id": {"type": "string"},
        "priority": {"type": "integer"}, "webhook": {"type": "string", "format": "uri"},
        "wait": {"type": "number", "minimum": 0, "description": "Seconds to wait for the job's end before "
                 "answering (see the query parameter wait)"},
        "partial_execution_targets": {"type": "array", "items": {"type": "string"}}}},
    "QueueChange": {"type": "object", "properties": {"clear": {"type": "boolean"},
                                                     "delete": {"type": "array", "items": {"type": "string"}}}},
    "Interrupt": {"type": "object", "properties": {"prompt_id": {"type": "string"}}},
    "Free": {"type": "object", "properties": {"unload_models": {"type": "boolean"},
                                              "free_memory": {"type": "boolean"}}},
    "Upload": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary"}, "type": {"type": "string", "enum": ["input", "temp",
                                                                                           "output"]},
        "subfolder": {"type": "string"}, "overwrite": {"type": "string"}, "original_ref": {"type": "string"}}},
    "WorkerFields": {"type": "object", "properties": {
        "url": {"type": "string"}, "name": {"type": "string"}, "weight": {"type": "number"},
        "enabled": {"type": "boolean"}, "draining": {"type": "boolean"}, "max_queue": {"type": "integer"},
        "auth_username": {"type": "string"}, "auth_password": {"type": "string", "writeOnly": True}}},
    "Priority": {"type": "object", "required": ["priority"], "properties": {"priority": {"type": "integer"}}},
    "Resubmit": {"type": "object", "required": ["prompt_ids"], "properties": {
        "prompt_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100}}},
    "SettingsChange": {"type": "object", "description": "Runtime settings by name (see /api/settings 'editable')",
                       "additionalProperties": True},
    "Dispatch": {"type": "object", "required": ["paused"], "properties": {"paused": {"type": "boolean"}}},
    "JobIds": {"type": "object", "properties": {"job_ids": {"type": "array", "items": {"type": "string"}}}},
    "EditorSettings": {"type": "object", "additionalProperties": True},
    "AnyJson": {"description": "Any JSON value (the editor stores it as given)"},
}

_ERRORS = {
    GATEWAY: ("Error", "The gateway's error: 400 bad input (names the field), 401 no or wrong token, 403 Host or "
                       "Origin not the gateway's, 404, 409, 413 body too large, 415 not application/json"),
    COMFY: ("ComfyError", "ComfyUI's error shape (400 invalid workflow, 409 prompt_id exists, 429 queue full with "
                          "Retry-After); the gateway's own checks (401, 403, 413, a bad gateway field) in its shape"),
    COMFY_EMPTY: ("Error", "ComfyUI answers these with an empty body (400 bad form or path, 404 no such file); the "
                           "gateway's own checks (401, 403, 413) answer in its error shape"),
    COMFY_TEXT: ("ComfyError", "ComfyUI answers these with a short plain-text message, an empty body or "
                          "{\"error\": \"...\"}; the gateway's own checks (401, 403, 413) answer in its error shape"),
}


def _parameters(path: str, query: tuple) -> list:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": kind},
                **_QUERY_DETAILS.get((path, name), {})} for name, kind in query]
    return params


def openapi_document(version: str) -> dict:
    """The OpenAPI document."""
    paths: dict = {}
    for method, path, summary, tag, body, status, errors, query in _ENDPOINTS:
        schema, description = _ERRORS[errors]
        failure = {"description": description,
                   "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
        if errors in (COMFY_EMPTY, COMFY_TEXT):
            failure["x-empty-body"] = True  # ComfyUI's bare answers
        if errors == COMFY_TEXT:
            failure["x-text-body"] = True  # ComfyUI's user-data routes answer errors as plain text
        operation: dict = {"summary": summary, "tags": [tag], "parameters": _parameters(path, query),
                           "responses": {str(status): {"description": "OK"}, "4XX": failure,
                                         **_MORE_RESPONSES.get((method, path), {})}}
        if body:
            kind = "multipart/form-data" if body == "Upload" else "application/json"
            operation["requestBody"] = {"required": body in ("PromptRequest", "Upload", "Priority", "Dispatch"),
                                        "content": {kind: {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
        paths.setdefault(path, {})[method] = operation
    return {"openapi": "3.0.3", "info": {"title": "comfyui-gateway", "version": version},
            "paths": paths, "components": {"schemas": _SCHEMAS}}
