"""The Job record: one accepted prompt, its life cycle state, progress and how the API shows it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..store.models import RawJSON

QUEUED, SUBMITTED, RUNNING, DONE, FAILED = "queued", "submitted", "running", "done", "failed"
ACTIVE_STATES = (QUEUED, SUBMITTED, RUNNING)
FINAL_STATES = (DONE, FAILED)
STATES = (QUEUED, SUBMITTED, RUNNING, DONE, FAILED)

# What ComfyUI-side status a gateway state reads as (/api/task/{prompt_id}/status).
COMFY_STATUS = {QUEUED: "queued", SUBMITTED: "queued", RUNNING: "running", DONE: "done", FAILED: "failed"}


@dataclass
class Progress:
    """Live progress of a running job, built from the worker's events."""

    node: str | None = None
    value: float = 0.0
    max: float = 0.0
    nodes_total: int = 0
    done_nodes: set = field(default_factory=set)
    cached_nodes: set = field(default_factory=set)

    @property
    def percent(self) -> float:
        """Share of the job done, counting the running node's value/max."""
        if not self.nodes_total:
            return 0.0
        done = len(self.done_nodes)
        partial = 0.0
        if self.node is not None and self.node not in self.done_nodes and self.max:
            partial = min(1.0, self.value / self.max)
        return round(min(100.0, 100.0 * (done + partial) / self.nodes_total), 1)

    def to_dict(self) -> dict:
        """JSON form."""
        return {"node": self.node, "value": self.value, "max": self.max,
                "nodes_done": len(self.done_nodes), "nodes_cached": len(self.cached_nodes),
                "nodes_total": self.nodes_total, "percent": self.percent}

    @classmethod
    def from_dict(cls, data: dict | None, nodes_total: int) -> "Progress":
        """Rebuild from the stored JSON (sets are not stored, so counts become placeholders)."""
        progress = cls(nodes_total=nodes_total)
        if data:
            progress.node = data.get("node")
            progress.value = data.get("value", 0.0)
            progress.max = data.get("max", 0.0)
            progress.done_nodes = {f"#{i}" for i in range(int(data.get("nodes_done", 0)))}
        return progress


@dataclass
class Job:
    """One accepted prompt. The jobs service is its only writer."""

    prompt_id: str
    gateway_job_id: str
    seq: int
    body_data: Any  # the POST /prompt body: a dict, a PackedBody while the job waits (see pack()), or
    # the JSON text as stored (RawJSON) until a job loaded at start-up is first read (JobService.derive)
    client_id: str | None = None
    priority: int = 0
    number: float = 0.0
    state: str = QUEUED
    worker_id: int | None = None
    attempts: int = 0
    created_at: float = field(default_factory=time.time)
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: dict | None = None
    history: dict | None = None
    webhook: str | None = None
    progress: Progress = field(default_factory=Progress)
    excluded_workers: set = field(default_factory=set)
    outputs_to_execute: list = field(default_factory=list)
    signature: str = ""
    cancel_requested: str | None = None  # "cancelled" or "interrupted" once the user asked
    outcome: str | None = None  # success | error | interrupted, from the events before the end marker
    requirements: object = None
    lost_since: float | None = None  # when its worker stopped answering while it ran
    claimed_at_report: int = 0  # the worker's report count when the job was claimed for it
    cost_cache: tuple | None = None  # (cost epoch, estimated seconds at speed 1)
    scheduler_view: tuple | None = None  # (epoch, QueuedJob) cache for the scheduler
    ended_on_worker: bool = False  # the worker has finished it; the gateway is collecting its history
    number_given: bool = False  # the client chose its ComfyUI number (else it follows the arrival order)
    front: bool = False  # submitted with front: true
    stored: bool = False  # its row has been handed to the store
    announced: bool = False  # the other instances of the cluster know this job (its whole row was sent)
    synced_at: float = 0.0  # replicas: the dispatcher's time of the last change applied here

    @property
    def body(self) -> dict:
        """The POST /prompt body as the worker gets it (client_id and prompt_id aside); parsed anew from
        its text while the job is packed."""
        data = self.body_data
        if isinstance(data, PackedBody):
            return data.unpack()
        return json.loads(data) if isinstance(data, str) else data

    @body.setter
    def body(self, value: dict) -> None:
        self.body_data = value

    @property
    def packed(self) -> bool:
        """True while the body is kept as JSON text."""
        return isinstance(self.body_data, (PackedBody, str))

    def pack(self) -> None:
        """Keep the body as JSON text while the job waits in the gateway.

        A parsed workflow is dozens of dicts and lists; as text it is one string, several times smaller,
        that the cyclic garbage collector never walks, and /queue copies it as it is. A deep queue of
        100,000 jobs is held this way; the text is parsed again only when the job is sent.
        """
        if not isinstance(self.body_data, PackedBody):
            self.body_data = PackedBody.of(self)

    def unpack(self) -> None:
        """Hold the body as a dict again (the job is leaving the queue for a worker)."""
        if self.packed:
            self.body_data = self.body

    @property
    def prompt(self) -> dict:
        """The API-format workflow."""
        return self.body.get("prompt") or {}

    @property
    def extra_data(self) -> dict:
        """The client's extra_data with its own client_id restored (as ComfyUI would store it)."""
        extra = dict(self.body.get("extra_data") or {})
        if self.client_id is not None:
            extra["client_id"] = self.client_id
        return extra

    @property
    def active(self) -> bool:
        """Still waiting or running."""
        return self.state in ACTIVE_STATES

    @property
    def run_seconds(self) -> float | None:
        """Execution time on the worker, when it ran to the end."""
        if self.started_at and self.finished_at:
            return max(0.0, self.finished_at - self.started_at)
        return None

    def comfy_number(self) -> Any:
        """The number as ComfyUI shows it (an int when it is whole)."""
        return int(self.number) if float(self.number).is_integer() else self.number

    def queue_item(self) -> list:
        """ComfyUI's 5-element queue item: [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
        return [self.comfy_number(), self.prompt_id, self.prompt, self.extra_data, list(self.outputs_to_execute)]

    def queue_item_json(self) -> str:
        """:meth:`queue_item` as JSON text; a packed job has it ready (every /queue poll lists the whole
        gateway queue, so a deep queue is not serialized again each time)."""
        data = self.body_data
        if isinstance(data, PackedBody) and data.number == self.number:
            return data.item_json
        return json.dumps(self.queue_item())

    def row(self) -> dict:
        """The fields persisted in the jobs table."""
        return {
            "prompt_id": self.prompt_id, "gateway_job_id": self.gateway_job_id, "seq": self.seq,
            "client_id": self.client_id, "priority": self.priority, "number": self.number,
            "state": self.state, "worker_id": self.worker_id, "attempts": self.attempts,
            "body": self._body_for_store(),
            "history": self.history, "error": self.error,
            "progress": self.progress.to_dict(), "webhook": self.webhook,
            "created_at": self.created_at, "submitted_at": self.submitted_at,
            "started_at": self.started_at, "finished_at": self.finished_at, "updated_at": time.time(),
        }

    def _body_for_store(self) -> Any:
        data = self.body_data
        if isinstance(data, PackedBody):
            return data.body_json()
        return RawJSON(data) if isinstance(data, str) else data

    @classmethod
    def from_row(cls, row: dict) -> "Job":
        """Rebuild a job from its stored row."""
        job = cls(prompt_id=row["prompt_id"], gateway_job_id=row["gateway_job_id"], seq=row["seq"],
                  body_data=row.get("body") or {}, client_id=row.get("client_id"), priority=row.get("priority") or 0,
                  number=row.get("number") if row.get("number") is not None else row["seq"],
                  state=row["state"], worker_id=row.get("worker_id"), attempts=row.get("attempts") or 0,
                  created_at=row["created_at"], submitted_at=row.get("submitted_at"),
                  started_at=row.get("started_at"), finished_at=row.get("finished_at"),
                  error=row.get("error"), history=row.get("history"), webhook=row.get("webhook"))
        job.progress = Progress.from_dict(row.get("progress"), 0)
        return job

    def timings(self) -> dict:
        """Timestamps and durations."""
        waited = (self.started_at or time.time()) - self.created_at if self.state != FAILED or self.started_at else None
        return {"created_at": self.created_at, "submitted_at": self.submitted_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "run_seconds": self.run_seconds,
                "wait_seconds": round(waited, 3) if waited is not None else None}

    def status_dict(self, worker_name: str | None, position: int | None) -> dict:
        """The job as /api/task/{prompt_id}/status shows it."""
        progress = self.progress.to_dict()
        if self.state == DONE:
            progress["percent"] = 100.0
        node = self.prompt.get(progress["node"]) if progress["node"] is not None else None
        progress["node_type"] = node.get("class_type") if isinstance(node, dict) else None
        return {
            "prompt_id": self.prompt_id, "gateway_job_id": self.gateway_job_id,
            "status": COMFY_STATUS[self.state], "state": self.state,
            "queue_position": position, "priority": self.priority, "number": self.comfy_number(),
            "client_id": self.client_id, "worker_id": self.worker_id, "worker": worker_name,
            "attempts": self.attempts, "progress": progress, "error": self.error, **self.timings(),
        }

    def gateway_dict(self, worker_name: str | None, position: int | None) -> dict:
        """The job as /api/task/gateway/{gateway_job_id} shows it."""
        out = self.status_dict(worker_name, position)
        out["status"] = self.state
        return out


class PackedBody(NamedTuple):
    """A waiting job's body as text: its /queue item (the workflow inside it) and the rest of the body."""

    number: float  # the job's number when item_json was made
    item_json: str  # json of queue_item(): [number, prompt_id, prompt, extra_data, outputs_to_execute]
    prompt_start: int  # where the workflow's JSON starts and ends in item_json
    prompt_end: int
    rest_json: str  # json of the body without "prompt"

    @classmethod
    def of(cls, job: "Job") -> "PackedBody":
        """Pack a job's (dict) body."""
        body = job.body
        head = "[%s, %s, " % (json.dumps(job.comfy_number()), json.dumps(job.prompt_id))
        prompt_json = json.dumps(body.get("prompt") or {})
        tail = ", %s, %s]" % (json.dumps(job.extra_data), json.dumps(list(job.outputs_to_execute)))
        rest = {key: value for key, value in body.items() if key != "prompt"}
        return cls(job.number, head + prompt_json + tail, len(head), len(head) + len(prompt_json), json.dumps(rest))

    def prompt_json(self) -> str:
        """The workflow as JSON text."""
        return self.item_json[self.prompt_start:self.prompt_end]

    def unpack(self) -> dict:
        """The body as a new dict."""
        body = {"prompt": json.loads(self.prompt_json())}
        body.update(json.loads(self.rest_json))
        return body

    def body_json(self) -> RawJSON:
        """The whole body as JSON text, for the store."""
        rest = self.rest_json[1:].strip()
        return RawJSON('{"prompt": %s%s' % (self.prompt_json(), "}" if rest == "}" else ", " + rest))
