"""Failover details (waiting jobs, retries) and relay details (takeover, no client_id, slow clients, status)."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

from tests.fake_comfy import sample_workflow, slow_workflow
from tests.fake_comfy.testing import WsRecorder
from tests.harness import Cluster


async def test_invalid_workflow_is_rejected_even_when_every_worker_is_busy(cluster):
    await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    await cluster.submit(slow_workflow(1.0, node_seconds=0.05))
    bad = sample_workflow()
    bad["2"]["inputs"]["blur_radius"] = 999
    status, body = await cluster.request("POST", "/api/prompt", json={"prompt": bad})
    assert status == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["2"]["errors"][0]["type"] == "value_bigger_than_max"
    unknown = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
    status, body = await cluster.request("POST", "/api/prompt", json={"prompt": unknown})
    assert status == 400 and "NoSuchNode" in body["error"]["message"]


async def test_jobs_waiting_on_a_dead_worker_run_elsewhere(cluster):
    victim = await cluster.add_sim(node_seconds=0.05, worker={"max_queue": 4})
    await cluster.wait_online()
    answers = [await cluster.submit(slow_workflow(0.5, node_seconds=0.05)) for _ in range(4)]
    statuses = [await cluster.get(f"/api/task/{a['prompt_id']}/status") for a in answers]
    assert {s["worker"] for s in statuses} == {"sim1"}
    assert [s["state"] for s in statuses].count("submitted") >= 2
    await victim.crash()
    rescuer = await cluster.add_sim(node_seconds=0.05)
    finals = [await cluster.wait_job(a["prompt_id"], timeout=30) for a in answers]
    assert all(f["status"] == "done" for f in finals), finals
    assert Counter(rescuer.executed)[answers[-1]["prompt_id"]] == 1
    assert all(Counter(rescuer.executed)[pid] <= 1 for pid in rescuer.executed)


async def test_a_job_whose_workers_keep_dying_fails_after_max_retries(tmp_path):
    cluster = Cluster(tmp_path / "gw", GATEWAY_MAX_RETRIES="0")
    await cluster.start()
    try:
        sim = await cluster.add_sim(node_seconds=0.05)
        await cluster.wait_online()
        answer = await cluster.submit(slow_workflow(2.0, node_seconds=0.05))
        await cluster.wait_job(answer["prompt_id"], states=("running",))
        await sim.crash()
        final = await cluster.wait_job(answer["prompt_id"], timeout=20)
        assert final["status"] == "failed" and final["error"]["type"] == "worker_lost"
        assert "gave up" in final["error"]["message"] and final["attempts"] == 1
    finally:
        await cluster.stop()


async def test_reused_client_id_takes_over_and_old_close_does_not_unregister(cluster):
    await cluster.add_sim(node_seconds=0.02)
    await cluster.wait_online()
    url = cluster.url.replace("http", "ws") + "/ws?clientId=same"
    old = await WsRecorder(cluster.session, url).connect()
    new = await WsRecorder(cluster.session, url).connect()
    await old.close()
    answer = await cluster.submit(sample_workflow(), client_id="same")
    await new.wait_done(answer["prompt_id"])
    assert not any(f.get("data", {}).get("prompt_id") == answer["prompt_id"] for f in old.frames)
    await new.close()


async def test_job_without_client_id_behaves_as_in_comfyui(cluster):
    await cluster.add_sim(node_seconds=0.02)
    await cluster.wait_online()
    async with WsRecorder(cluster.session, cluster.url.replace("http", "ws") + "/ws?clientId=observer") as observer:
        answer = await cluster.submit(sample_workflow())
        await cluster.wait_job(answer["prompt_id"])
        await asyncio.sleep(0.2)
        mine = [f["type"] for f in observer.frames if f.get("data", {}).get("prompt_id") == answer["prompt_id"]]
        assert "progress_state" in mine
        assert not set(mine) & {"execution_start", "executing", "executed", "execution_success"}
    history = await cluster.get(f"/history/{answer['prompt_id']}")
    assert history[answer["prompt_id"]]["prompt"][3] == {}


async def test_status_frames_carry_the_cluster_queue(cluster):
    await cluster.add_sim(node_seconds=0.05)
    await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online(2)
    async with WsRecorder(cluster.session, cluster.url.replace("http", "ws") + "/ws?clientId=count") as ws:
        assert ws.frames[0]["data"]["status"]["exec_info"]["queue_remaining"] == 0
        answers = [await cluster.submit(slow_workflow(0.3, node_seconds=0.05), client_id="count") for _ in range(4)]
        await ws.wait_for(lambda f: f.get("type") == "status"
                          and f["data"]["status"]["exec_info"]["queue_remaining"] == 4)
        info = await cluster.get("/prompt")
        assert info["exec_info"]["queue_remaining"] == 4
        for answer in answers[:-1]:
            await ws.wait_done(answer["prompt_id"], timeout=15)
            remaining = [f["data"]["status"]["exec_info"]["queue_remaining"] for f in ws.frames
                         if f.get("type") == "status"]
            assert 0 not in remaining[1:], "no zero while jobs are still queued anywhere in the cluster"
        await ws.wait_done(answers[-1]["prompt_id"], timeout=15)
        await ws.wait_for(lambda f: f.get("type") == "status"
                          and f["data"]["status"]["exec_info"]["queue_remaining"] == 0)


async def test_job_completes_by_polling_when_the_worker_socket_stays_down(cluster):
    sim = await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    await cluster.gateway.events.monitors[sim.worker_id].stop()
    answer = await cluster.submit(slow_workflow(0.5, node_seconds=0.05))
    final = await cluster.wait_job(answer["prompt_id"], timeout=15)
    assert final["status"] == "done"
    history = await cluster.get(f"/api/history/{answer['prompt_id']}")
    assert history[answer["prompt_id"]]["outputs"]


async def _socket_that_never_reads(url: str, client_id: str) -> socket.socket:
    """A real WebSocket client on the gateway that completes the handshake and then stops reading."""
    host, port = url.split("//", 1)[1].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small, so the gateway's side fills up
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    await loop.sock_sendall(sock, (f"GET /ws?clientId={client_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                                   ).encode())
    answer = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


async def test_a_client_that_stops_reading_is_dropped_without_holding_up_the_others(cluster, monkeypatch):
    import gateway.handlers.base as handler_base
    monkeypatch.setattr(handler_base, "CLIENT_BUFFER_LIMIT", 2 * 1024 * 1024)
    await cluster.add_sim(node_seconds=0.02)
    await cluster.wait_online()
    hub = cluster.gateway.hub
    sock = await _socket_that_never_reads(cluster.url, "stuck")
    try:
        for _ in range(100):
            if hub.get("stuck") is not None:
                break
            await asyncio.sleep(0.02)
        stuck = hub.get("stuck")
        assert stuck is not None
        async with WsRecorder(cluster.session, cluster.url.replace("http", "ws") + "/ws?clientId=fast") as fast:
            chunk = b"\0" * (256 * 1024)
            sent = 0
            while not stuck.closed and sent < 64 * 1024 * 1024:  # far beyond the limit plus kernel buffers
                stuck.put(chunk)
                sent += len(chunk)
            assert stuck.closed, "a client that never reads is dropped once its backlog passes the limit"
            assert sent < 32 * 1024 * 1024
            for _ in range(100):
                if hub.get("stuck") is None:
                    break
                await asyncio.sleep(0.02)
            assert hub.get("stuck") is None, "the dropped socket is closed and unregistered"
            for _ in range(3):
                answer = await cluster.submit(sample_workflow(), client_id="fast")
                await fast.wait_done(answer["prompt_id"], timeout=10)
    finally:
        sock.close()
