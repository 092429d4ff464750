"""One gateway with hundreds of workers and a deep queue (issue 13): submits/s, latencies, memory, restart.

Processes: N simulated workers in one process (``python -m tests.fake_comfy --fleet N``), the gateway
(its own process; SQLite, or a throwaway MariaDB database with --mysql), and a load client in its own
process (raw keep-alive connections, --concurrency submitters). Every job lasts far longer than the
bench (node_seconds 1000), so each worker holds its one job and everything else waits in the gateway.

For each (workers, queued) pair in --grid and each rate in --rates:
* idle: the gateway's CPU over --idle seconds with the workers registered and nothing else happening;
* burst: `queued` POST /prompt as fast as the client manages (--rates 0), or at a fixed rate per second
  (an open loop: latency counts from when a job was due): submits/s, submit p50/p99, the time until the
  first `workers` jobs were answered (fill: each went straight to an idle worker) and the p99 of the
  submissions from 2 s on (the steady state: every worker busy, each new job only queued); meanwhile this
  process asks GET /api/task/{id}/status and GET /healthz every 50 ms (p99 of each);
* then: GET /api/queue and GET /api/tasks times (median of 5), the gateway's RSS and per queued job;
* restart: SIGTERM, start again on the same data, time until it serves with every queued job loaded.

Prints figures only; compare within a run (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
import uuid

import aiohttp
from _common import (
    HOST,
    PYTHON,
    REPO,
    GatewayProc,
    cpu_seconds,
    percentile,
    read_status_kb,
    rerun_line,
    spawn,
    stop_all,
    table,
    wait_http,
    workdir,
)

from tests.fake_comfy.workflows import sample_workflow


# ----- the load client (a child process) -------------------------------------------------------------
async def client_main(url: str, count: int, concurrency: int, out: str, rate: float = 0.0) -> None:
    """Submit `count` jobs over `concurrency` kept connections; write [[start, ms, status], ...] to `out`.

    rate 0: each connection sends its next job as soon as it has the answer (as fast as the gateway
    takes them). rate > 0: an open loop, job i is due at i / rate seconds; its latency counts from when
    it was due, so a gateway that falls behind shows it in the latency, not in a slower client.
    """
    host, port = url.split("//")[1].split(":")
    body = json.dumps({"prompt": sample_workflow(size=64)}).encode()
    request = (f"POST /api/prompt HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    next_index = [0]
    results: list = []
    # Connections first: their set-up is not part of any submission's latency.
    connections = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
    began = time.perf_counter()

    async def submitter(reader, writer) -> None:
        while next_index[0] < count:
            index = next_index[0]
            next_index[0] += 1
            started = time.perf_counter()
            if rate > 0:
                due = began + index / rate
                if due > started:
                    await asyncio.sleep(due - started)
                started = due
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            results.append((started - began, (time.perf_counter() - started) * 1000, status))
        writer.close()
    await asyncio.gather(*(submitter(reader, writer) for reader, writer in connections))
    with open(out, "w") as handle:
        json.dump(results, handle)


# ----- the bench ------------------------------------------------------------------------------------
class Probe:
    """GET a path every 50 ms while the burst runs; latencies in ms."""

    def __init__(self, session, url: str):
        self.session, self.url, self.times = session, url, []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with self.session.get(self.url) as response:
                    await response.read()
                self.times.append((time.perf_counter() - started) * 1000)
            except aiohttp.ClientError:
                pass
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except asyncio.TimeoutError:
                pass


async def timed_get(session, url: str, repeat: int = 5) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with session.get(url) as response:
            size = len(await response.read())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), size


async def register(session, gateway: GatewayProc, urls: list[str]) -> None:
    async def add(index: int, url: str) -> None:
        async with session.post(gateway.url + "/api/workers", json={"url": url, "name": f"w{index}"}) as response:
            assert response.status == 201, await response.text()
    for start in range(0, len(urls), 20):
        await asyncio.gather(*(add(i, u) for i, u in enumerate(urls[start:start + 20], start)))
    deadline = time.monotonic() + 120
    while True:
        async with session.get(gateway.url + "/api/workers") as response:
            workers = await response.json()
        if sum(1 for w in workers if w["state"] == "online" and w["node_types"]) >= len(urls):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not come online")
        await asyncio.sleep(0.2)


def mysql_env(name: str) -> dict:
    return {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "3306", "MYSQL_USER": "root", "MYSQL_PASSWORD": "",
            "MYSQL_DATABASE": name, "GATEWAY_DATABASE": "mysql"}


def mysql_admin(sql: str) -> None:
    import pymysql
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


async def one(root, session, workers: int, queued: int, rate: float, args) -> dict:
    run = root / f"w{workers}_q{queued}_{uuid.uuid4().hex[:4]}"
    run.mkdir()
    fleet_file = run / "fleet.txt"
    spawn([PYTHON, "-m", "tests.fake_comfy", "--fleet", str(workers), "--port", "0", "--fleet-file",
           str(fleet_file), "--node-seconds", "1000", "--log-level", "WARNING", "--data-dir", str(run / "fleet")],
          run / "fleet.log", REPO)
    while not fleet_file.exists():
        await asyncio.sleep(0.1)
    urls = fleet_file.read_text().split()
    env = {"GATEWAY_LOG_LEVEL": "WARNING"}
    database = None
    if args.mysql:
        database = "gw_scale_" + uuid.uuid4().hex[:8]
        mysql_admin(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        env.update(mysql_env(database))
    gateway = GatewayProc(run, env)
    try:
        await wait_http(session, gateway.url + "/healthz", gateway.proc)
        await register(session, gateway, urls)
        await asyncio.sleep(2)
        cpu0, t0 = cpu_seconds(gateway.pid), time.monotonic()
        await asyncio.sleep(args.idle)
        idle_cpu = 100 * (cpu_seconds(gateway.pid) - cpu0) / (time.monotonic() - t0)
        rss_before = read_status_kb(gateway.pid, "VmRSS") / 1024

        async with session.post(gateway.url + "/api/prompt", json={"prompt": sample_workflow(size=64)}) as r:
            probe_id = (await r.json())["prompt_id"]
        stop = asyncio.Event()
        probes = [Probe(session, gateway.url + f"/api/task/{probe_id}/status"), Probe(session, gateway.url + "/healthz")]
        tasks = [asyncio.ensure_future(p.run(stop)) for p in probes]
        out = run / "client.json"
        client = spawn([PYTHON, os.path.abspath(__file__), "--client", gateway.url, "--count", str(queued),
                        "--concurrency", str(args.concurrency), "--out", str(out), "--rate", str(rate)],
                       run / "client.log", REPO)
        started = time.monotonic()
        while client.poll() is None:
            await asyncio.sleep(0.1)
        burst = time.monotonic() - started
        stop.set()
        await asyncio.gather(*tasks)
        results = json.loads(out.read_text())
        ok = [r for r in results if r[2] == 200]
        span = max(r[0] + r[1] / 1000 for r in results) - min(r[0] for r in results)
        lat = [r[1] for r in ok]
        # The first `workers` jobs go straight to idle workers, which must each answer (here 200 simulated
        # workers share one process and start their jobs at once); "fill s" is when the last of those
        # answers came back. The backlog that builds meanwhile takes a moment to drain, so "p99 after 2 s"
        # is the p99 of the submissions that started 2 s or more into the burst: the steady state.
        by_start = sorted(results)
        filled = max(r[0] + r[1] / 1000 for r in by_start[:workers])
        lat_steady = [r[1] for r in by_start if r[2] == 200 and r[0] >= 2.0]
        queue_ms, queue_size = await timed_get(session, gateway.url + "/api/queue")
        tasks_ms, _ = await timed_get(session, gateway.url + "/api/tasks?state=queued&limit=50")
        rss_after = read_status_kb(gateway.pid, "VmRSS") / 1024

        # Restart with everything still queued: SIGTERM, start again on the same data.
        gateway.proc.send_signal(signal.SIGTERM)
        gateway.proc.wait(120)
        again = GatewayProc.__new__(GatewayProc)
        again.port, again.url, again.data_dir = gateway.port, gateway.url, gateway.data_dir
        restart_started = time.monotonic()
        again.proc = spawn([PYTHON, "-m", "gateway", "--host", HOST, "--port", str(gateway.port), "--data-dir",
                            str(gateway.data_dir), "--no-tray"], run / "gateway2.log", run / "gateway_cwd",
                           {"GATEWAY_DATABASE": "sqlite", **env})
        while True:
            try:
                async with session.get(again.url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    health = await r.json()
                if health.get("role") == "dispatcher" and health["jobs_queued"] + health["jobs_running"] >= \
                        len(ok) + 1 - 1:
                    break
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if again.proc.poll() is not None:
                raise RuntimeError("the gateway did not restart")
            await asyncio.sleep(0.05)
        restart = time.monotonic() - restart_started
        # Ready means serving and dispatching; the waiting workflows are read in slices after that.
        # The first full /api/queue after the restart needs all of them.
        async with session.get(again.url + "/api/queue") as r:
            await r.read()
        restart_queue = time.monotonic() - restart_started
        await asyncio.sleep(1)
        rss_restarted = read_status_kb(again.proc.pid, "VmRSS") / 1024
        return {"workers": workers, "queued": queued, "rate": rate or "max", "accepted": len(ok),
                "refused": len(results) - len(ok),
                "submits/s": len(results) / span if span else 0, "p50": statistics.median(lat) if lat else 0,
                "p99": percentile(lat, 99), "p99 after 2 s": percentile(lat_steady, 99), "fill s": filled,
                "status p99": percentile(probes[0].times, 99),
                "healthz p99": percentile(probes[1].times, 99), "queue ms": queue_ms, "queue MB": queue_size / 1e6,
                "tasks ms": tasks_ms, "rss MB": rss_after, "kB/job": (rss_after - rss_before) * 1024 / max(1, queued),
                "idle cpu %": idle_cpu, "restart s": restart, "restart+queue s": restart_queue,
                "rss restarted MB": rss_restarted, "burst s": burst}
    finally:
        stop_all()
        if database:
            mysql_admin(f"DROP DATABASE IF EXISTS `{database}`")


async def main(args) -> None:
    root = workdir("gw_bench_scale_")
    rows = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session:
        for pair in args.grid.split(","):
            workers, queued = (int(x) for x in pair.split("x"))
            for rate in (float(r) for r in args.rates.split(",")):
                result = await one(root, session, workers, queued, rate, args)
                rows.append(result)
                print(json.dumps(result), flush=True)
    keys = ["workers", "queued", "rate", "submits/s", "p50", "p99", "fill s", "p99 after 2 s", "status p99", "healthz p99",
            "queue ms", "queue MB", "tasks ms", "rss MB", "kB/job", "idle cpu %", "restart s", "restart+queue s", "rss restarted MB"]
    print(f"\nstore: {'MariaDB' if args.mysql else 'SQLite'}; client concurrency {args.concurrency}; times in ms "
          "unless named")
    print(table(keys, [[f"{r[k]:.1f}" if isinstance(r[k], float) else r[k] for k in keys] for r in rows]))
    print("\nre-run:", rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", default="20x1000,20x20000,200x20000,200x100000",
                        help="comma-separated WORKERSxQUEUED pairs")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rates", default="0",
                        help="comma-separated submit rates per second for each pair (0: as fast as it goes)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    parser.add_argument("--mysql", action="store_true", help="the gateway on a throwaway MariaDB database")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.client:
        asyncio.run(client_main(arguments.client, arguments.count, arguments.concurrency, arguments.out,
                                arguments.rate))
        sys.exit(0)
    try:
        asyncio.run(main(arguments))
    finally:
        stop_all()
