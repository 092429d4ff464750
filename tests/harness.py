"""A gateway plus simulators on loopback, with small client helpers, for integration tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

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

    async def restart_gateway_after_stop(self) -> None:
        """Start a new gateway on the same data folder after the old one was stopped."""
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


async def wait_until_answers(url: str, timeout: float, proc, what: str) -> None:
    """Poll url until it answers 200; fail if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if proc.returncode is not None:
                raise AssertionError(f"{what} exited with {proc.returncode}")
            await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not answer {url} within {timeout} s")


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GatewayProcess:
    """The gateway as a real process (python -m gateway), for kill -9 and restart tests."""

    def __init__(self, data_dir: Path, port: int | None = None, env: dict | None = None, host: str = "127.0.0.1"):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = env or {}
        self.host = host
        self.proc = None
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> "GatewayProcess":
        """Start and wait for /healthz."""
        import os
        import sys
        env = {**os.environ, "GATEWAY_HEALTH_INTERVAL": "0.2", "GATEWAY_OFFLINE_AFTER": "2",
               "WORKER_REQUEST_TIMEOUT": "5", **self.env}
        root = Path(__file__).resolve().parent.parent
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "--no-tray", "--host", self.host, "--port", str(self.port),
            "--data-dir", str(self.data_dir), cwd=str(root), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=open(self.data_dir.parent / "gateway-stderr.log", "ab"))
        await wait_until_answers(self.url + "/healthz", timeout, self.proc, "gateway")
        return self

    @property
    def log_text(self) -> str:
        """The gateway's log file so far."""
        path = self.data_dir / "logs" / "gateway.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def rss_kb(self) -> int:
        """The process's resident memory now (Linux)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    async def kill(self) -> None:
        """kill -9."""
        self.proc.kill()
        await self.proc.wait()

    async def terminate(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.proc.terminate()
        return await asyncio.wait_for(self.proc.wait(), 30)


class SimProcess:
    """A simulator in its own process (python -m tests.fake_comfy), for timing-sensitive tests."""

    def __init__(self, speed: float = 1.0, node_seconds: float = 0.01, extra_args: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--port", str(self.port), "--speed", str(speed), "--node-seconds", str(node_seconds),
                     "--log-level", "WARNING", *extra_args]
        self.proc = None

    async def start(self, timeout: float = 15.0) -> "SimProcess":
        """Start and wait until /system_stats answers."""
        import sys
        root = Path(__file__).resolve().parent.parent
        self.proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.fake_comfy", *self.args,
                                                         cwd=str(root), stdout=asyncio.subprocess.DEVNULL)
        await wait_until_answers(self.url + "/system_stats", timeout, self.proc, "simulator")
        return self

    async def stop(self) -> None:
        """Terminate the process."""
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


async def webhook_receiver(port: int, received: list) -> web.AppRunner:
    """An HTTP server on 127.0.0.1:port that appends each JSON body POSTed to /hook to `received`;
    call .cleanup() on the runner when done."""
    async def hook(request):
        received.append(await request.json())
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner
