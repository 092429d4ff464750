"""A gateway plus simulators on loopback, with small client helpers, for integration tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from gateway.app import Gateway
from gateway.config import load_settings
from tests.fake_comfy import FakeComfy


def test_settings(data_dir: Path, **overrides: Any):
    """Settings for an in-process test gateway: free port, fast health checks, no files read."""
    cli = {"host": "127.0.0.1", "port": 0, "data_dir": str(data_dir)}
    environ = {"GATEWAY_HEALTH_INTERVAL": "0.2", "GATEWAY_OFFLINE_AFTER": "2", "WORKER_REQUEST_TIMEOUT": "5"}
    for key, value in overrides.items():
        environ[key] = str(value)
    return load_settings(None, cli, environ=environ, env_file=None)


class Cluster:
    """One in-process gateway and any number of simulators, plus an HTTP session to talk to them."""

    def __init__(self, data_dir: Path, **settings: Any):
        self.data_dir = data_dir
        self.settings = settings
        self.gateway: Gateway | None = None
        self.sims: list[FakeComfy] = []
        self.session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> "Cluster":
        """Start the gateway (workers are added with add_sim)."""
        self.gateway = Gateway(test_settings(self.data_dir, **self.settings))
        port = await self.gateway.start()
        self.url = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()
        return self

    async def restart_gateway(self) -> None:
        """Stop the gateway gracefully and start a new one on the same data folder."""
        await self.gateway.stop()
        self.gateway = Gateway(test_settings(self.data_dir, **self.settings))
        port = await self.gateway.start()
        self.url = f"http://127.0.0.1:{port}"

    async def add_sim(self, register: bool = True, worker: dict | None = None, **sim_kwargs: Any) -> FakeComfy:
        """Start a simulator and (by default) register it as a worker."""
        sim = FakeComfy(**sim_kwargs)
        await sim.start()
        self.sims.append(sim)
        if register:
            body = {"url": sim.url, "name": f"sim{len(self.sims)}", **(worker or {})}
            answer = await self.post("/api/workers", body)
            assert answer.get("id"), answer
            sim.worker_id = answer["id"]
        return sim

    async def wait_online(self, count: int | None = None, timeout: float = 10.0) -> None:
        """Wait until `count` workers (default: all) are online with their node types known."""
        deadline = time.monotonic() + timeout
        while True:
            workers = self.gateway.registry.all()
            want = len(workers) if count is None else count
            ready = [w for w in workers if w.status == "online" and w.capabilities is not None
                     and w.monitor_connected]
            if len(ready) >= want:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(ready)} of {want} workers online: "
                                     f"{[w.public_dict() for w in workers]}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop everything."""
        if self.session:
            await self.session.close()
        if self.gateway:
            await self.gateway.stop()
        for sim in self.sims:
            try:
                await sim.stop()
            finally:
                sim.cleanup()

    # ----- client helpers ---------------------------------------------------------------------------
    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, parsed JSON or text) of one request to the gateway."""
        async with self.session.request(method, self.url + path, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, (await response.json(content_type=None)) if text else None
            except ValueError:
                return response.status, text

    async def get(self, path: str, **kwargs: Any) -> Any:
        """GET and return the JSON, asserting 200."""
        status, body = await self.request("GET", path, **kwargs)
        assert status == 200, (path, status, body)
        return body

    async def post(self, path: str, body: Any = None, expect: int | tuple = (200, 201)) -> Any:
        """POST JSON and return the answer, asserting the status."""
        status, answer = await self.request("POST", path, json=body)
        expected = (expect,) if isinstance(expect, int) else expect
        assert status in expected, (path, status, answer)
        return answer

    async def submit(self, workflow: dict, **fields: Any) -> dict:
        """POST /api/prompt and return the answer (asserting 200)."""
        return await self.post("/api/prompt", {"prompt": workflow, **fields}, expect=200)

    async def wait_job(self, prompt_id: str, states=("done", "failed"), timeout: float = 20.0) -> dict:
        """Poll /api/task/{id}/status until it reaches one of `states`."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.request("GET", f"/api/task/{prompt_id}/status")
            if status == 200 and body["status"] in states:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"job {prompt_id} still {body}")
            await asyncio.sleep(0.05)
