"""Shared fixtures: simulators (tests.fake_comfy.fixtures) and a gateway cluster on loopback."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.harness import Cluster, GatewayProcess

pytest_plugins = ["tests.fake_comfy.fixtures"]


@pytest.fixture
async def cluster(tmp_path):
    """A started gateway with no workers; tests add simulators with cluster.add_sim()."""
    c = Cluster(tmp_path / "gw")
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def start_gateway(tmp_path):
    """start_gateway(env, host=...) -> a started GatewayProcess (python -m gateway); all stopped at the end."""
    started: list[GatewayProcess] = []

    async def start(env: dict | None = None, host: str = "127.0.0.1", name: str = "gw") -> GatewayProcess:
        proc = GatewayProcess(tmp_path / name, env={"GATEWAY_DATABASE": "sqlite", **(env or {})}, host=host)
        started.append(proc)
        return await proc.start()

    yield start
    for proc in started:
        if proc.proc.returncode is None:
            await proc.terminate()


async def register_online(gw, sim, name: str = "sim1", headers: dict | None = None, timeout: float = 15.0) -> dict:
    """Register a simulator with a gateway process and wait until it is online with its nodes known."""
    async with aiohttp.ClientSession() as session:
        async with session.post(gw.url + "/api/workers", json={"url": sim.url, "name": name},
                                headers=headers or {}) as response:
            worker = await response.json()
            assert response.status == 201, worker
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with session.get(f"{gw.url}/api/workers/{worker['id']}", headers=headers or {}) as response:
                state = await response.json()
            if state["state"] == "online" and state["node_types"] and state["monitor_connected"]:
                return state
            await asyncio.sleep(0.1)
    raise AssertionError(f"worker {name} not online: {state}")
