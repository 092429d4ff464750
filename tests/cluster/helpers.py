"""Several gateway processes on one throwaway MariaDB database (and Redis), with simulators in the test process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from tests.fake_comfy import FakeComfy
from tests.harness import GatewayProcess, free_port
from tests.store.services import unavailable

LEASE_SECONDS = 2.0  # short, so takeovers happen within a test's patience


class Nodes:
    """Gateway instances sharing one MySQL database and one Redis prefix; every instance is a process."""

    def __init__(self, root: Path, mysql: dict, redis_url: str | None, **env: Any):
        self.root = root
        self.env = {"MYSQL_HOST": mysql["host"], "MYSQL_PORT": str(mysql["port"]), "MYSQL_USER": mysql["user"],
                    "MYSQL_PASSWORD": mysql["password"], "MYSQL_DATABASE": mysql["database"],
                    "GATEWAY_REDIS_PREFIX": f"gwtest-{uuid.uuid4().hex[:10]}:",
                    "GATEWAY_LEASE_SECONDS": str(LEASE_SECONDS), "GATEWAY_CLUSTER_POLL_INTERVAL": "0.5",
                    **{key: str(value) for key, value in env.items()}}
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.procs: dict[str, GatewayProcess] = {}
        self.sims: list[FakeComfy] = []
        self.session: aiohttp.ClientSession | None = None

    async def start(self, *names: str, **env: Any) -> list[GatewayProcess]:
        """Start instances (in order, each its own process) and wait until each answers /healthz."""
        if self.session is None:
            self.session = aiohttp.ClientSession()
        started = []
        for name in names:
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True)
            proc = GatewayProcess(folder / "data", env={**self.env, "GATEWAY_INSTANCE_NAME": name,
                                                        **{k: str(v) for k, v in env.items()}})
            self.procs[name] = await proc.start()
            started.append(proc)
        return started

    def url(self, name: str) -> str:
        return self.procs[name].url

    async def add_sim(self, on: str, **sim_kwargs: Any) -> FakeComfy:
        """Start a simulator (in this process) and register it through instance `on`."""
        sim = FakeComfy(**sim_kwargs)
        await sim.start()
        self.sims.append(sim)
        status, answer = await self.request(on, "POST", "/api/workers",
                                            json={"url": sim.url, "name": f"sim{len(self.sims)}"})
        assert status == 201, answer
        sim.worker_id = answer["id"]
        return sim

    async def request(self, name: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON or text) of one request to an instance."""
        async with self.session.request(method, self.url(name) + path, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None) if text else None
            except ValueError:
                return response.status, text

    async def get(self, name: str, path: str) -> Any:
        status, body = await self.request(name, "GET", path)
        assert status == 200, (name, path, status, body)
        return body

    async def submit(self, name: str, workflow: dict, **fields: Any) -> dict:
        status, body = await self.request(name, "POST", "/api/prompt", json={"prompt": workflow, **fields})
        assert status == 200, (name, status, body)
        return body

    async def dispatcher(self, timeout: float = 15.0, among: tuple | None = None) -> str:
        """The name of the instance that holds the lease (as it says itself)."""
        deadline = time.monotonic() + timeout
        while True:
            for name in among or tuple(self.procs):
                if self.procs[name].proc.returncode is not None:
                    continue
                try:
                    if (await self.get(name, "/healthz"))["role"] == "dispatcher":
                        return name
                except (aiohttp.ClientError, AssertionError):
                    pass
            if time.monotonic() > deadline:
                raise AssertionError("no instance became the dispatcher")
            await asyncio.sleep(0.05)

    async def wait_workers_online(self, names: tuple, count: int, timeout: float = 10.0) -> float:
        """Wait until every named instance lists `count` online workers with known node types; seconds."""
        started = time.monotonic()
        while True:
            ready = 0
            for name in names:
                workers = await self.get(name, "/api/workers")
                ready += sum(1 for w in workers if w["state"] == "online" and w["node_types"]) >= count
            if ready == len(names):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"workers not online everywhere: {workers}")
            await asyncio.sleep(0.05)

    async def wait_job(self, name: str, prompt_id: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.request(name, "GET", f"/api/task/{prompt_id}/status")
            if status == 200 and body["status"] in ("done", "failed"):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"job {prompt_id} still {status} {body}")
            await asyncio.sleep(0.1)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        os.kill(self.procs[name].proc.pid, sig)

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.proc.returncode is None:
                try:
                    os.kill(proc.proc.pid, signal.SIGCONT)
                    await proc.terminate()
                except (ProcessLookupError, asyncio.TimeoutError):
                    proc.proc.kill()
        for sim in self.sims:
            await sim.stop()
            sim.cleanup()
        if self.session is not None:
            await self.session.close()

    def logs(self) -> str:
        """Every instance's stderr, for a failing assertion's message."""
        out = []
        for name in self.procs:
            path = self.root / name / "gateway-stderr.log"
            if path.exists():
                out.append(f"----- {name}\n" + path.read_text(errors="replace")[-6000:])
        return "\n".join(out)


class RedisServer:
    """A redis-server of the test's own on a free port (so the test may stop and restart it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed (Debian package redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class TcpProxy:
    """A TCP relay to a server that the test can cut (connections dropped, new ones refused) and restore."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                sink.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        """The server is gone: open connections end, new ones are refused."""
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def restore(self) -> None:
        """The server is back on the same address."""
        await self.start()

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()
