"""GET /metrics: Prometheus text built from the gateway's in-memory state at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


def render_metrics(gateway) -> tuple[bytes, str]:
    """(body, content type) of the current metrics."""
    registry = CollectorRegistry()
    jobs = Gauge("comfyui_gateway_jobs", "Active jobs by state", ["state"], registry=registry)
    for state, count in gateway.jobs.counts().items():
        jobs.labels(state).set(count)
    queue = Gauge("comfyui_gateway_worker_queue", "Queue remaining reported by each worker", ["worker"],
                  registry=registry)
    up = Gauge("comfyui_gateway_worker_online", "1 when the worker is online", ["worker"], registry=registry)
    latency = Gauge("comfyui_gateway_worker_latency_ms", "Last health-check latency", ["worker"], registry=registry)
    for worker in gateway.registry.all():
        queue.labels(worker.name).set(worker.queue_remaining)
        up.labels(worker.name).set(1 if worker.status == "online" else 0)
        if worker.latency_ms is not None:
            latency.labels(worker.name).set(worker.latency_ms)
    Gauge("comfyui_gateway_cluster_queue_remaining", "Jobs in the whole cluster",
          registry=registry).set(gateway.cluster_queue_remaining())
    Gauge("comfyui_gateway_ws_clients", "Connected client WebSockets", registry=registry).set(len(gateway.hub))
    Gauge("comfyui_gateway_waiting_requests", "Requests waiting for a job (wait mode, status long polls)",
          registry=registry).set(gateway.waits.count)
    Gauge("comfyui_gateway_dispatch_paused", "1 while dispatching is paused",
          registry=registry).set(1 if gateway.dispatcher and gateway.dispatcher.paused else 0)
    return generate_latest(registry), CONTENT_TYPE_LATEST
