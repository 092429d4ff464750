"""Several gateways on one MySQL + Redis (issue 11): takeover time, submit latency, cross-instance events.

Every gateway is its own process on a throwaway MariaDB database (dropped at the end) and a fresh Redis
key prefix; the simulators run in this process (so their own records say which jobs ran, and how often).

Phases, each compared within the run:
* submit: POST /prompt latency through a follower, through the dispatcher, and through a single
  instance (MySQL, and SQLite), in interleaved rounds; the worker takes every job at once
  (max_queue 1000), so the dispatcher and the single instance forward each job (fast path) while a
  follower stores it for the dispatcher.
* events: one client id connected to the dispatcher (same instance) and to a follower (cross-instance)
  at once; KSampler jobs sent through the dispatcher; every progress frame's arrival at the follower's
  client minus its arrival at the dispatcher's client (one clock) is what crossing instances adds.
* uploads: upload latency with the bytes in the data folder (single instance: what a shared folder
  costs on local disk) versus in MySQL (a follower), and the dispatcher's first use of such an upload.
* takeover: --rounds times, a cluster of two with jobs flowing; kill -9 of the dispatcher; the time
  until the other instance says it dispatches, and until the first job it sends; then every job must
  have run exactly once (0 lost, 0 duplicated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time
import uuid
from collections import Counter

import aiohttp
import pymysql
from _common import GatewayProc, percentile, rerun_line, stop_all, table, wait_http, workdir

from tests.fake_comfy import FakeComfy
from tests.fake_comfy.workflows import ksampler_workflow, sample_workflow

MYSQL = {"host": os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1"),
         "port": int(os.environ.get("BENCH_MYSQL_PORT", "3306")),
         "user": os.environ.get("BENCH_MYSQL_USER", "root"),
         "password": os.environ.get("BENCH_MYSQL_PASSWORD", "")}
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class Database:
    """A MariaDB database that exists for one cluster of the bench."""

    def __init__(self):
        self.name = "gw_bench_" + uuid.uuid4().hex[:10]
        self._admin(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")

    def _admin(self, sql: str) -> None:
        conn = pymysql.connect(autocommit=True, **MYSQL)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    def env(self, lease: float) -> dict:
        return {"MYSQL_HOST": MYSQL["host"], "MYSQL_PORT": str(MYSQL["port"]), "MYSQL_USER": MYSQL["user"],
                "MYSQL_PASSWORD": MYSQL["password"], "MYSQL_DATABASE": self.name, "GATEWAY_DATABASE": "mysql",
                "REDIS_URL": REDIS_URL, "GATEWAY_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
                "GATEWAY_LEASE_SECONDS": str(lease), "GATEWAY_LOG_LEVEL": "WARNING"}

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS `{self.name}`")


class Cluster:
    """Gateway processes on one database; named a, b, ..."""

    def __init__(self, root, session, env: dict):
        self.root = root
        self.session = session
        self.env = env
        self.gateways: dict[str, GatewayProc] = {}

    async def start(self, name: str) -> GatewayProc:
        folder = self.root / f"{name}-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        gateway = GatewayProc(folder, {**self.env, "GATEWAY_INSTANCE_NAME": name})
        await wait_http(self.session, gateway.url + "/healthz", gateway.proc)
        self.gateways[name] = gateway
        return gateway

    async def role(self, name: str) -> str | None:
        try:
            async with self.session.get(self.gateways[name].url + "/healthz",
                                        timeout=aiohttp.ClientTimeout(total=1)) as response:
                return (await response.json())["role"]
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    async def dispatcher(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, gateway in self.gateways.items():
                if gateway.proc.poll() is None and await self.role(name) == "dispatcher":
                    return name
            await asyncio.sleep(0.02)
        raise RuntimeError("no dispatcher")

    async def register(self, name: str, sims: list, **fields) -> None:
        for index, sim in enumerate(sims):
            async with self.session.post(self.gateways[name].url + "/api/workers",
                                         json={"url": sim.url, "name": f"sim{index}", **fields}) as response:
                assert response.status == 201, await response.text()
        for gateway in self.gateways.values():
            while True:
                async with self.session.get(gateway.url + "/api/workers") as response:
                    workers = await response.json()
                if sum(1 for w in workers if w["state"] == "online" and w["node_types"]) >= len(sims):
                    break
                await asyncio.sleep(0.05)

    def kill(self, name: str) -> None:
        gateway = self.gateways.pop(name)
        os.kill(gateway.pid, signal.SIGKILL)
        gateway.proc.wait()


async def submit(session, url: str, workflow: dict, **fields) -> tuple[float, dict]:
    started = time.perf_counter()
    async with session.post(url + "/api/prompt", json={"prompt": workflow, **fields}) as response:
        body = await response.json()
        assert response.status == 200, body
    return (time.perf_counter() - started) * 1000, body


async def wait_done(session, url: str, prompt_ids, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for prompt_id in prompt_ids:
        while True:
            try:
                async with session.get(url + f"/api/task/{prompt_id}/status") as response:
                    if response.status == 200 and (await response.json())["status"] in ("done", "failed"):
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {prompt_id} not done")
            await asyncio.sleep(0.05)


# ----- phases ---------------------------------------------------------------------------------------
async def submit_phase(root, session, args) -> list:
    sim = FakeComfy(node_seconds=0.0005)
    await sim.start()
    databases = [Database(), Database()]
    try:
        pair = Cluster(root, session, databases[0].env(args.lease))
        await pair.start("a")
        await pair.start("b")
        await pair.register("a", [sim], max_queue=1000)
        single_mysql = Cluster(root, session, databases[1].env(args.lease))
        await single_mysql.start("s")
        await single_mysql.register("s", [sim], max_queue=1000)
        single_sqlite = Cluster(root, session, {"GATEWAY_LOG_LEVEL": "WARNING"})
        await single_sqlite.start("q")
        await single_sqlite.register("q", [sim], max_queue=1000)
        targets = {"follower (cluster of 2)": pair.gateways["b"].url,
                   "dispatcher (cluster of 2)": pair.gateways["a"].url,
                   "single instance, MySQL": single_mysql.gateways["s"].url,
                   "single instance, SQLite": single_sqlite.gateways["q"].url}
        times: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds_submit):
            for name, url in targets.items():
                for _ in range(args.submits // args.rounds_submit):
                    elapsed, _ = await submit(session, url, sample_workflow(size=8))
                    times[name].append(elapsed)
        rows = [(name, len(v), f"{statistics.median(v):.2f}", f"{percentile(v, 99):.2f}") for name, v in times.items()]
        for cluster in (pair, single_mysql, single_sqlite):
            for name in list(cluster.gateways):
                cluster.gateways[name].proc.terminate()
        return rows
    finally:
        await sim.stop()
        sim.cleanup()
        for database in databases:
            database.drop()


async def events_phase(root, session, args) -> dict:
    sims = [FakeComfy(node_seconds=0.002, models={"checkpoints": ["sd15.safetensors"]}) for _ in range(2)]
    for sim in sims:
        await sim.start()
    database = Database()
    try:
        pair = Cluster(root, session, database.env(args.lease))
        await pair.start("a")
        await pair.start("b")
        await pair.register("a", sims)
        arrivals: dict[str, dict[tuple, float]] = {"a": {}, "b": {}}
        sockets = {}

        async def read(name: str) -> None:
            async for message in sockets[name]:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                now = time.perf_counter()
                frame = message.json()
                if frame.get("type") == "progress":
                    data = frame["data"]
                    arrivals[name][(data.get("prompt_id"), data.get("node"), data.get("value"))] = now
        for name in ("a", "b"):
            sockets[name] = await session.ws_connect(pair.gateways[name].url.replace("http", "ws")
                                                     + "/ws?clientId=bench-watcher")
        readers = [asyncio.ensure_future(read(name)) for name in ("a", "b")]
        ids = []
        for _ in range(args.event_jobs):
            _, body = await submit(session, pair.gateways["a"].url, ksampler_workflow(steps=40),
                                   client_id="bench-watcher")
            ids.append(body["prompt_id"])
            await wait_done(session, pair.gateways["a"].url, [body["prompt_id"]])
        await asyncio.sleep(0.5)
        for task in readers:
            task.cancel()
        for ws in sockets.values():
            await ws.close()
        added = [(arrivals["b"][key] - arrivals["a"][key]) * 1000 for key in arrivals["a"] if key in arrivals["b"]]
        return {"frames at a (same instance)": len(arrivals["a"]), "frames at b (cross-instance)": len(arrivals["b"]),
                "added median ms": statistics.median(added) if added else float("nan"),
                "added p90 ms": percentile(added, 90), "added p99 ms": percentile(added, 99),
                "added max ms": max(added) if added else float("nan")}
    finally:
        for sim in sims:
            await sim.stop()
            sim.cleanup()
        database.drop()


async def takeover_phase(root, session, args) -> list:
    rows = []
    for round_number in range(args.rounds):
        sims = [FakeComfy(node_seconds=0.01) for _ in range(2)]
        for sim in sims:
            await sim.start()
        database = Database()
        try:
            pair = Cluster(root, session, database.env(args.lease))
            await pair.start("a")
            await pair.start("b")
            await pair.register("a", sims)
            urls = [pair.gateways["a"].url, pair.gateways["b"].url]
            ids = [(await submit(session, urls[i % 2], sample_workflow(size=512)))[1]["prompt_id"]
                   for i in range(40)]
            await asyncio.sleep(0.5)
            leader = await pair.dispatcher()
            survivor = "b" if leader == "a" else "a"
            sent_before = sum(len(sim.prompt_posts) for sim in sims)
            killed = time.monotonic()
            pair.kill(leader)
            while await pair.role(survivor) != "dispatcher":
                await asyncio.sleep(0.005)
            took_over = time.monotonic() - killed
            while sum(len(sim.prompt_posts) for sim in sims) == sent_before and time.monotonic() - killed < 60:
                await asyncio.sleep(0.005)
            first_send = time.monotonic() - killed
            await wait_done(session, pair.gateways[survivor].url, ids)
            ran = Counter(pid for sim in sims for pid in sim.executed)
            lost = sum(1 for pid in ids if ran[pid] == 0)
            twice = sum(1 for pid in ids if ran[pid] > 1)
            rows.append((round_number + 1, f"{took_over:.2f}", f"{first_send:.2f}", lost, twice))
            pair.gateways[survivor].proc.terminate()
        finally:
            for sim in sims:
                await sim.stop()
                sim.cleanup()
            database.drop()
    return rows


async def upload(session, url: str, data: bytes, name: str) -> tuple[float, dict]:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=name, content_type="application/octet-stream")
    started = time.perf_counter()
    async with session.post(url + "/api/upload/image", data=form) as response:
        body = await response.json()
        assert response.status == 200, body
    return (time.perf_counter() - started) * 1000, body


async def uploads_phase(root, session, args) -> list:
    """Upload latency where the bytes go: the local data folder (what a shared folder costs on local disk)
    versus MySQL in parts (what every instance reaches); and the dispatcher's first use of an upload
    another instance took (read back from MySQL, then sent to the worker)."""
    sim = FakeComfy(node_seconds=0.001)
    await sim.start()
    database = Database()
    rows = []
    try:
        pair = Cluster(root, session, database.env(args.lease))
        await pair.start("a")
        await pair.start("b")
        await pair.register("a", [sim])
        single = Cluster(root, session, {"GATEWAY_LOG_LEVEL": "WARNING"})
        await single.start("q")
        await single.register("q", [sim])
        for megabytes in (1, 20, 90):
            data = os.urandom(megabytes * 1024 * 1024)
            local, _ = await upload(session, single.gateways["q"].url, data, f"local-{megabytes}.png")
            shared, answer = await upload(session, pair.gateways["b"].url, data, f"shared-{megabytes}.png")
            workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": answer["name"]}},
                        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
            started = time.perf_counter()
            _, job = await submit(session, pair.gateways["a"].url, workflow)
            await wait_done(session, pair.gateways["a"].url, [job["prompt_id"]])
            first_use = (time.perf_counter() - started) * 1000
            rows.append((f"{megabytes} MB", f"{local:.0f}", f"{shared:.0f}", f"{first_use:.0f}"))
        return rows
    finally:
        await sim.stop()
        sim.cleanup()
        database.drop()


async def main(args) -> None:
    root = workdir("gw_bench_cluster_")
    async with aiohttp.ClientSession() as session:
        if "submit" in args.phases:
            rows = await submit_phase(root, session, args)
            print(f"\nPOST /prompt latency ({args.submits} per target, {args.rounds_submit} interleaved rounds)")
            print(table(["through", "n", "median ms", "p99 ms"], rows))
        if "events" in args.phases:
            figures = await events_phase(root, session, args)
            print(f"\nprogress frames, same client id on the dispatcher (a) and a follower (b); "
                  f"{args.event_jobs} KSampler jobs of 40 steps via a")
            print(table(["figure", "value"], [(k, f"{v:.2f}" if isinstance(v, float) else v)
                                              for k, v in figures.items()]))
        if "uploads" in args.phases:
            rows = await uploads_phase(root, session, args)
            print("\nPOST /upload/image: bytes kept in the data folder (SQLite instance) vs in MySQL (cluster "
                  "follower b); then a job on the dispatcher a using b's upload")
            print(table(["size", "local folder ms", "MySQL ms", "first use on a ms"], rows))
        if "takeover" in args.phases:
            rows = await takeover_phase(root, session, args)
            print(f"\nkill -9 of the dispatcher, lease {args.lease:g} s (40 jobs, 2 workers, two instances)")
            print(table(["round", "takeover s", "first send s", "lost", "run twice"], rows))
            times = [float(r[1]) for r in rows]
            print(f"median takeover {statistics.median(times):.2f} s (target <= lease + 1 s = {args.lease + 1:g} s); "
                  f"lost {sum(r[3] for r in rows)}, run twice {sum(r[4] for r in rows)}")
    print("\nre-run:", rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lease", type=float, default=5.0, help="GATEWAY_LEASE_SECONDS (default 5, the default)")
    parser.add_argument("--rounds", type=int, default=5, help="takeover rounds")
    parser.add_argument("--submits", type=int, default=300, help="submits per target")
    parser.add_argument("--rounds-submit", type=int, default=5)
    parser.add_argument("--event-jobs", type=int, default=20)
    parser.add_argument("--phases", default="submit,events,uploads,takeover")
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        stop_all()
