"""Replays an n8n workflow export (docs/n8n/*.json) against real servers, the way n8n 1.x would run it.

Every parameter of every node is resolved by n8n's own code (``resolver.js``: n8n-workflow, the release
n8n 1.123 ships), with the run data of earlier nodes in n8n's shape, so ``$json``, ``$('Node').item.json``
(paired items, through loops too), ``$execution.resumeUrl``, ``$now`` and ``={{ }}`` templates resolve as
in n8n. Set and If nodes use n8n's own type checks and filter. What a node then does is done here, following
n8n-nodes-base 1.121 (the nodes of n8n 1.123): HTTP Request 4.2 (JSON bodies, query, timeout, response
format auto/json/file, a non-2xx answer fails the node), Wait 1.1 resumed by a webhook call with a time
limit, Split Out, Read/Write Files from Disk (write), Stop and Error, Manual Trigger. Any other node type
fails the replay, so a file cannot use a node this replay does not know.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
MAX_NODE_RUNS = 200  # a loop that never ends fails the replay instead of hanging the test
BINARY_TYPES = ("image/", "audio/", "video/", "application/octet-stream", "application/pdf", "application/zip")


class ReplayError(AssertionError):
    """A node failed the way it would fail in n8n (or the file uses something the replay cannot run)."""


class Stopped(Exception):
    """A Stop and Error node ended the execution."""

    def __init__(self, node: str, message: str):
        super().__init__(f"{node}: {message}")
        self.node, self.message = node, message


class Resolver:
    """The node process that resolves parameters with n8n-workflow (one JSON line each way)."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc

    @classmethod
    async def start(cls) -> "Resolver":
        proc = await asyncio.create_subprocess_exec("node", str(HERE / "resolver.js"), cwd=str(HERE),
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    limit=64 * 1024 * 1024)
        return cls(proc)

    async def ask(self, op: str, **fields: Any) -> Any:
        self.proc.stdin.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise ReplayError("the n8n resolver stopped")
        answer = json.loads(line)
        if not answer["ok"]:
            raise ReplayError(f"{op} {fields.get('node', '')}: {answer['error']}")
        return answer.get("value")

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.stdin.close()
            await self.proc.wait()


@dataclass
class Request:
    """One HTTP request an HTTP Request node sent, and its answer."""

    node: str
    method: str
    url: str
    query: dict
    body: Any
    status: int
    answer: Any


@dataclass
class Outcome:
    """How an execution ended."""

    runs: dict = field(default_factory=dict)  # node name -> list of runs (n8n's run data, binary kept)
    requests: list = field(default_factory=list)
    stopped: Stopped | None = None
    written: dict = field(default_factory=dict)  # path -> bytes written by Read/Write Files from Disk

    def output(self, node: str, run: int = -1, index: int = 0) -> list:
        """The items a node put out on one output in one of its runs."""
        return self.runs[node][run]["data"]["main"][index]

    def ran(self, node: str) -> int:
        return len(self.runs.get(node, []))


class WebhookInbox:
    """Stands in for n8n's /webhook-waiting/ endpoint: the gateway's webhook lands here."""

    def __init__(self):
        self.calls: asyncio.Queue = asyncio.Queue()
        self.runner: aiohttp.web.AppRunner | None = None
        self.url = ""

    async def start(self, port: int) -> "WebhookInbox":
        from aiohttp import web

        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            await self.calls.put({"path": request.path, "headers": dict(request.headers),
                                  "query": dict(request.query), "body": json.loads(body) if body else {}})
            return web.json_response({"message": "Workflow was started"})
        app = web.Application()
        app.router.add_post("/{tail:.*}", receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Replay:
    """Runs one workflow export from its Manual Trigger."""

    def __init__(self, workflow: dict, resolver: Resolver, session: aiohttp.ClientSession,
                 inbox: WebhookInbox | None = None, execution_id: str = "1"):
        self.workflow = workflow
        self.nodes = {node["name"]: node for node in workflow["nodes"]}
        self.resolver = resolver
        self.session = session
        self.inbox = inbox
        self.execution = {"id": execution_id, "mode": "test",
                          "resumeUrl": f"{inbox.url if inbox else 'http://n8n.invalid'}/webhook-waiting/{execution_id}",
                          "resumeFormUrl": f"{inbox.url if inbox else 'http://n8n.invalid'}/form-waiting/{execution_id}"}
        self.outcome = Outcome()

    # ----- the execution --------------------------------------------------------------------------
    async def run(self, trigger: str = "Start") -> Outcome:
        await self.resolver.ask("load", workflow=self.workflow)
        stack: list[tuple[str, list, dict | None]] = [(trigger, [{"json": {}}], None)]
        runs = 0
        while stack:
            name, items, source = stack.pop()
            runs += 1
            if runs > MAX_NODE_RUNS:
                raise ReplayError(f"more than {MAX_NODE_RUNS} node runs: a loop that does not end")
            try:
                outputs = await self._run_node(name, items, source)
            except Stopped as stop:
                self.outcome.stopped = stop
                return self.outcome
            run_index = len(self.outcome.runs[name]) - 1  # the run that just ended
            # n8n's v1 order: the first output's branch runs to its end before the next one.
            pending = []
            for index, out_items in enumerate(outputs):
                if not out_items:
                    continue
                for target in self._targets(name, index):
                    pending.append((target, out_items, {"previousNode": name, "previousNodeOutput": index,
                                                        "previousNodeRun": run_index}))
            stack.extend(reversed(pending))
        return self.outcome

    def _targets(self, name: str, index: int) -> list[str]:
        outputs = (self.workflow["connections"].get(name) or {}).get("main") or []
        return [c["node"] for c in outputs[index]] if index < len(outputs) else []

    async def _run_node(self, name: str, items: list, source: dict | None) -> list[list]:
        node = self.nodes[name]
        if node.get("disabled"):
            raise ReplayError(f"node {name} is disabled")
        kind = node["type"].removeprefix("n8n-nodes-base.")
        handler = getattr(self, "_node_" + kind, None)
        if handler is None:
            raise ReplayError(f"node {name}: type {node['type']} is not one the replay knows")
        runs = self.outcome.runs.setdefault(name, [])
        run = {"startTime": int(time.time() * 1000), "executionTime": 0, "executionStatus": "success",
               "source": [source] if source else [], "data": {"main": [[]]}}
        ctx = self._ctx_maker(name, items, source, len(runs))  # earlier runs only, as n8n hands them over
        try:
            outputs = await handler(name, node, items, ctx)
        finally:
            runs.append(run)
        for out in outputs:
            for item in out:
                if "pairedItem" not in item and len(items) == 1:
                    item["pairedItem"] = {"item": 0}  # n8n pairs the outputs of a one-item input with it
        run["data"]["main"] = outputs
        return outputs

    def _ctx_maker(self, name: str, items: list, source: dict | None, run_index: int):
        def ctx(item_index: int) -> dict:
            return {"runData": _without_bytes(self.outcome.runs), "runIndex": run_index, "itemIndex": item_index,
                    "input": [_item_without_bytes(i) for i in items], "source": source, "execution": self.execution}
        return ctx

    async def _params(self, name: str, ctx, item_index: int) -> dict:
        return await self.resolver.ask("params", node=name, ctx=ctx(item_index))

    # ----- node types -------------------------------------------------------------------------------
    async def _node_manualTrigger(self, name, node, items, ctx) -> list[list]:
        return [[{"json": {}}]]

    async def _node_set(self, name, node, items, ctx) -> list[list]:
        out = []
        for index, item in enumerate(items):
            new = {"json": await self.resolver.ask("set", node=name, ctx=ctx(index)), "pairedItem": {"item": index}}
            if item.get("binary") and not (node["parameters"].get("options") or {}).get("stripBinary"):
                new["binary"] = dict(item["binary"])
            out.append(new)
        return [out]

    async def _node_if(self, name, node, items, ctx) -> list[list]:
        passed, failed = [], []
        for index, item in enumerate(items):
            item = {**item, "pairedItem": item.get("pairedItem", {"item": index})}
            (passed if await self.resolver.ask("if", node=name, ctx=ctx(index)) else failed).append(item)
        return [passed, failed]

    async def _node_stopAndError(self, name, node, items, ctx) -> list[list]:
        params = await self._params(name, ctx, 0)
        if params.get("errorType", "errorMessage") != "errorMessage":
            raise ReplayError(f"{name}: only the error message type is replayed")
        raise Stopped(name, params["errorMessage"])

    async def _node_splitOut(self, name, node, items, ctx) -> list[list]:
        out = []
        for index, item in enumerate(items):
            params = await self._params(name, ctx, index)
            if params.get("include", "noOtherFields") != "noOtherFields" or "," in params["fieldToSplitOut"]:
                raise ReplayError(f"{name}: only one field and include=noOtherFields are replayed")
            field_name = params["fieldToSplitOut"].strip().removeprefix("$json.")
            value = _lodash_get(item["json"], field_name)
            if value is None:
                value = []
            elif isinstance(value, dict):
                value = list(value.values())
            elif not isinstance(value, list):
                value = [value]
            for element in value:
                json_part = dict(element) if isinstance(element, dict) else {field_name: element}
                out.append({"json": json_part, "pairedItem": {"item": index}})
        return [out]

    async def _node_readWriteFile(self, name, node, items, ctx) -> list[list]:
        out = []
        for index, item in enumerate(items):
            params = await self._params(name, ctx, index)
            if params.get("operation") != "write":
                raise ReplayError(f"{name}: only the write operation is replayed")
            prop = params.get("dataPropertyName", "data")
            binary = (item.get("binary") or {}).get(prop)
            if binary is None:
                raise ReplayError(f"{name}: item {index} has no binary property {prop!r}")
            path = Path(params["fileName"])
            if not path.parent.is_dir():  # n8n creates no folders: its node fails this way
                raise ReplayError(f"{name}: The file or directory does not exist ({path.parent})")
            path.write_bytes(binary["bytes"])
            self.outcome.written[str(path)] = binary["bytes"]
            out.append({"json": {**item["json"], "fileName": str(path)}, "binary": dict(item["binary"]),
                        "pairedItem": {"item": index}})
        return [out]

    async def _node_wait(self, name, node, items, ctx) -> list[list]:
        params = await self._params(name, ctx, 0)
        if params.get("resume") != "webhook" or params.get("httpMethod", "GET") != "POST":
            raise ReplayError(f"{name}: only a Wait resumed by a POST webhook call is replayed")
        limit = None
        if params.get("limitWaitTime"):
            if params.get("limitType", "afterTimeInterval") != "afterTimeInterval":
                raise ReplayError(f"{name}: only a time interval limit is replayed")
            unit = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}[params.get("resumeUnit", "hours")]
            limit = float(params.get("resumeAmount", 1)) * unit
        try:
            call = await asyncio.wait_for(self.inbox.calls.get(), limit)
        except asyncio.TimeoutError:
            return [[dict(item) for item in items]]  # the time limit: n8n goes on with the input items
        expected = "/webhook-waiting/" + self.execution["id"]
        if call["path"] != expected:
            raise ReplayError(f"{name}: the webhook went to {call['path']}, not {expected}")
        return [[{"json": {"headers": call["headers"], "params": {}, "query": call["query"], "body": call["body"]}}]]

    async def _node_httpRequest(self, name, node, items, ctx) -> list[list]:
        if node["typeVersion"] < 4:
            raise ReplayError(f"{name}: HTTP Request {node['typeVersion']} is not replayed (4.x is)")
        out = []
        for index, item in enumerate(items):
            params = await self._params(name, ctx, index)
            out.extend(await self._http(name, params, item, index))
        return [out]

    async def _http(self, name: str, params: dict, item: dict, index: int) -> list:
        method = params.get("method", "GET")
        url = params["url"]
        query = {}
        if params.get("sendQuery"):
            if params.get("specifyQuery", "keypair") != "keypair":
                raise ReplayError(f"{name}: only key/value query parameters are replayed")
            query = {p["name"]: str(p["value"]) for p in params["queryParameters"]["parameters"]}
        headers = {}
        if params.get("sendHeaders"):
            headers = {p["name"]: str(p["value"]) for p in params["headerParameters"]["parameters"]}
        body = None
        if params.get("sendBody"):
            if params.get("contentType", "json") != "json":
                raise ReplayError(f"{name}: only JSON bodies are replayed")
            if params.get("specifyBody") == "json":
                raw = params.get("jsonBody", "")
                if isinstance(raw, str):
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise ReplayError(f"{name}: JSON parameter needs to be valid JSON (n8n's error): {raw[:300]}")
                else:
                    body = raw
            else:
                body = {p["name"]: p["value"] for p in params["bodyParameters"]["parameters"]}
        options = params.get("options") or {}
        response_options = ((options.get("response") or {}).get("response") or {})
        response_format = response_options.get("responseFormat") or "autodetect"
        timeout = aiohttp.ClientTimeout(total=float(options.get("timeout") or 300_000) / 1000.0)
        async with self.session.request(method, url, params=query, json=body, headers=headers,
                                        timeout=timeout) as response:
            data = await response.read()
            content_type = response.headers.get("Content-Type", "")
            status = response.status
        if not 200 <= status < 300 and not response_options.get("neverError"):
            raise ReplayError(f"{name}: {method} {url} answered {status}: {data[:500]!r}")
        if response_format == "autodetect":
            response_format = ("json" if "application/json" in content_type else
                               "file" if any(t in content_type for t in BINARY_TYPES) else "text")
        answer: Any
        if response_format == "file":
            prop = response_options.get("outputPropertyName") or "data"
            mime = content_type.split(";")[0] or mimetypes.guess_type(url)[0] or "application/octet-stream"
            answer = {"bytes": len(data), "mimeType": mime}
            results = [{"json": item["json"], "binary": {**(item.get("binary") or {}), prop: {
                "mimeType": mime, "fileSize": str(len(data)), "bytes": data}}, "pairedItem": {"item": index}}]
        elif response_format == "text":
            answer = data.decode("utf-8", "replace")
            results = [{"json": {response_options.get("outputPropertyName") or "data": answer},
                        "pairedItem": {"item": index}}]
        else:
            try:
                answer = json.loads(data) if data else {}
            except ValueError:
                raise ReplayError(f"{name}: Response body is not valid JSON (n8n's error)")
            parts = answer if isinstance(answer, list) else [answer]
            results = [{"json": part, "pairedItem": {"item": index}} for part in parts]
        self.outcome.requests.append(Request(name, method, url, query, body, status, answer))
        return results


def _lodash_get(data: Any, path: str) -> Any:
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _item_without_bytes(item: dict) -> dict:
    if not item.get("binary"):
        return item
    binary = {key: {k: v for k, v in value.items() if k != "bytes"} for key, value in item["binary"].items()}
    return {**item, "binary": binary}


def _without_bytes(runs: dict) -> dict:
    """Run data for the resolver: binary data described, not sent."""
    out = {}
    for name, node_runs in runs.items():
        out[name] = [{**run, "data": {"main": [[_item_without_bytes(i) for i in items]
                                               for items in run["data"]["main"]]}} for run in node_runs]
    return out
