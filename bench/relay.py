"""Live-progress relay (issue 4): events/s relayed to 100 clients, and the latency the gateway adds.

Four simulators (bench/tap_sim.py: the fake ComfyUI plus "tap" sockets, each its own process) with a
checkpoint, one gateway (its own process), and in this process 100 WebSocket clients on the gateway's
/api/ws (clientIds bench-c0..bench-c99) plus one tap socket per simulator.

Why taps: the gateway submits every job to its worker under its own client id, so the worker sends the
job's events only to the gateway's monitor socket; a plain second socket on the worker (even for jobs
sent without client_id) sees none of them. A tap gets a copy of each such frame from the simulator's
publisher just before the gateway's copy, so "arrival at the gateway client - arrival at the tap" is
the latency the gateway adds (its read, routing and re-send, plus one more loopback hop), measured in
one process with one clock. Matched frames: every ``progress`` frame, by (prompt_id, value).

Phases:
* light: one KSampler job at a time (one worker busy), clients taken in turn;
* load: --jobs jobs submitted at once, client_ids spread over the 100 clients, all 4 workers busy:
  events relayed per second (all frames the clients receive, first to last), and latency under load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import aiohttp
from _common import (
    GatewayProc,
    Sim,
    cpu_seconds,
    percentile,
    register_workers,
    rerun_line,
    stop_all,
    table,
    wait_http,
    workdir,
)

from tests.fake_comfy.workflows import ksampler_workflow

CLIENTS = 100
PROBES = 10  # clients bench-c0..c9 live in this process (timed); the other 90 in a child process (load)


class Recorder:
    """Arrival times of progress frames on taps and clients; frame counts; job completions."""

    def __init__(self):
        self.tap: dict[tuple, float] = {}
        self.client: dict[tuple, float] = {}
        self.frames = 0
        self.status_frames = 0
        self.first_frame: float | None = None
        self.last_frame = 0.0
        self.tap_frames = 0
        self.done: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future] = {}
        self.counting = False

    def on_tap(self, raw: str, now: float) -> None:
        if not raw.startswith('{"type": "status"'):
            self.tap_frames += self.counting
        if raw.startswith('{"type": "progress",'):
            data = _json(raw)["data"]
            self.tap.setdefault((data["prompt_id"], data["value"]), now)

    def on_client(self, raw: str, now: float) -> None:
        if self.counting:
            self.frames += 1
            self.status_frames += raw.startswith('{"type": "status"')
            if self.first_frame is None:
                self.first_frame = now
            self.last_frame = now
        if raw.startswith('{"type": "progress",'):
            data = _json(raw)["data"]
            self.client.setdefault((data["prompt_id"], data["value"]), now)
        elif raw.startswith('{"type": "executing"') and '"node": null' in raw:
            pid = _json(raw)["data"].get("prompt_id")
            self.done.setdefault(pid, now)
            waiter = self.waiters.get(pid)
            if waiter and not waiter.done():
                waiter.set_result(now)

    def added_ms(self, prompt_ids: set[str]) -> list[float]:
        """Added latency (ms) of every progress frame of these jobs seen on both sides."""
        return [(t - self.tap[k]) * 1000 for k, t in self.client.items() if k[0] in prompt_ids and k in self.tap]


def _json(raw: str):
    import json
    return json.loads(raw)


async def reader(ws, callback) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            callback(msg.data, time.monotonic())


async def submit(session, gw_url: str, client: int, steps: int) -> str:
    body = {"prompt": ksampler_workflow(steps=steps), "client_id": f"bench-c{client}"}
    async with session.post(gw_url + "/api/prompt", json=body) as r:
        answer = await r.json()
        if r.status != 200:
            raise RuntimeError(f"gateway refused a job: {r.status} {answer}")
        return answer["prompt_id"]


def latency_row(name: str, values: list[float], expected: int) -> list:
    if not values:
        return [name, 0, expected, "-", "-", "-", "-"]
    return [name, len(values), expected, f"{statistics.median(values):.2f}", f"{percentile(values, 90):.2f}",
            f"{percentile(values, 99):.2f}", f"{max(values):.2f}"]


async def swarm(args) -> None:
    """Child process: clients bench-c{first}..c{first+count-1}; counts frames between 'start' and 'stop' on stdin.

    Writes 'ready', then 'done <prompt_id>' per finished job, then 'result <json>' after 'stop'.
    """
    import json
    import sys
    rec = Recorder()

    def on_client(raw: str, now: float) -> None:
        rec.on_client(raw, now)
        if raw.startswith('{"type": "executing"') and '"node": null' in raw:
            print("done", _json(raw)["data"].get("prompt_id"), flush=True)

    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [await session.ws_connect(f"{args.swarm}/api/ws?clientId=bench-c{i}", max_msg_size=0)
                   for i in range(args.first, args.first + args.count)]
        tasks = [asyncio.ensure_future(reader(ws, on_client)) for ws in sockets]
        print("ready", flush=True)
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "start":
                rec.counting = True
            elif line in ("stop", ""):
                rec.counting = False
                break
        # CLOCK_MONOTONIC is one clock for every process of the machine, so these arrival times compare
        # directly with the taps' in the parent.
        arrivals = [[pid, value, t] for (pid, value), t in rec.client.items()]
        print("result", json.dumps({"frames": rec.frames, "status_frames": rec.status_frames,
                                    "first": rec.first_frame, "last": rec.last_frame, "arrivals": arrivals}),
              flush=True)
        for ws in sockets:
            await ws.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Swarm:
    """The child process holding the load clients."""

    async def start(self, gw_url: str, first: int, count: int, rec: Recorder) -> None:
        import sys
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--swarm", gw_url.replace("http", "ws"),
            "--first", str(first), "--count", str(count), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024)  # the result line lists every arrival
        self.rec = rec
        self.result: dict = {}
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.ensure_future(self._read())
        await asyncio.wait_for(self._ready, 60)

    async def _read(self) -> None:
        import json
        async for raw in self.proc.stdout:
            word, _, rest = raw.decode().strip().partition(" ")
            if word == "ready":
                self._ready.set_result(True)
            elif word == "done":
                self.rec.done.setdefault(rest, time.monotonic())
                waiter = self.rec.waiters.get(rest)
                if waiter and not waiter.done():
                    waiter.set_result(True)
            elif word == "result":
                self.result = json.loads(rest)

    async def send(self, command: str) -> None:
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()

    async def finish(self) -> dict:
        await self.send("stop")
        await asyncio.wait_for(self._reader, 30)
        await self.proc.wait()
        return self.result

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def main(args) -> None:
    work = workdir("bench_relay_")
    sims = [Sim(work, node_seconds=args.node_seconds, models="checkpoints=sd15.safetensors", script="tap_sim.py",
                name=f"sim{i}") for i in range(4)]
    gw = GatewayProc(work)
    rec = Recorder()
    sockets, tasks = [], []
    crowd = Swarm()
    # limit=0: aiohttp's default pool of 100 connections would hold the 101st socket back
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                     connector=aiohttp.TCPConnector(limit=0)) as session:
        for sim in sims:
            await wait_http(session, sim.url + "/system_stats", sim.proc)
        await wait_http(session, gw.url + "/healthz", gw.proc)
        await register_workers(session, gw.url, sims)
        for i, sim in enumerate(sims):
            ws = await session.ws_connect(f"{sim.url.replace('http', 'ws')}/ws?clientId=benchtap-{i}", max_msg_size=0)
            sockets.append(ws)
            tasks.append(asyncio.ensure_future(reader(ws, rec.on_tap)))
        for i in range(PROBES):
            ws = await session.ws_connect(f"{gw.url.replace('http', 'ws')}/api/ws?clientId=bench-c{i}",
                                          max_msg_size=0)
            sockets.append(ws)
            tasks.append(asyncio.ensure_future(reader(ws, rec.on_client)))
        try:
            await crowd.start(gw.url, PROBES, CLIENTS - PROBES, rec)
            await asyncio.sleep(0.5)
            print(f"4 simulators (node_seconds {args.node_seconds}), gateway pid {gw.pid}, {CLIENTS} clients "
                  f"connected ({PROBES} timed in this process, {CLIENTS - PROBES} in a child process)")
            loop = asyncio.get_running_loop()

            # light: one job at a time, for the timed clients
            light = set()
            for j in range(args.light_jobs):
                pid = await submit(session, gw.url, j % PROBES, args.steps)
                waiter = rec.waiters.setdefault(pid, loop.create_future())
                if pid in rec.done and not waiter.done():
                    waiter.set_result(True)
                await asyncio.wait_for(waiter, 60)
                light.add(pid)
            await asyncio.sleep(0.3)

            # load: everything at once, client ids spread over all 100 clients
            rec.counting = True
            await crowd.send("start")
            pids = {"gateway": [gw.pid], "4 simulators": [s.proc.pid for s in sims],
                    "bench (10 timed clients + taps)": [os.getpid()], "bench (90 clients)": [crowd.proc.pid]}
            cpu0 = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
            t0 = time.monotonic()
            load = []
            for j in range(args.jobs):
                pid = await submit(session, gw.url, (j * 7) % CLIENTS, args.steps)
                load.append(pid)
                waiter = rec.waiters.setdefault(pid, loop.create_future())
                if pid in rec.done and not waiter.done():
                    waiter.set_result(True)
            await asyncio.wait_for(asyncio.gather(*(rec.waiters[p] for p in load)), 60 + args.jobs * args.steps
                                   * args.node_seconds * 3)
            await asyncio.sleep(0.3)
            rec.counting = False
            wall = time.monotonic() - t0
            cpu = {k: sum(cpu_seconds(p) for p in v) - cpu0[k] for k, v in pids.items()}
            other = await crowd.finish()
        finally:
            crowd.kill()
        for ws in sockets:
            await ws.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    probe_ms = rec.added_ms(set(load))  # the 10 clients in this process only
    for prompt_id, value, arrived in other.get("arrivals", ()):
        rec.client.setdefault((prompt_id, value), arrived)
    rec.frames += other["frames"]
    rec.status_frames += other["status_frames"]
    rec.first_frame = min(t for t in (rec.first_frame, other["first"]) if t is not None)
    rec.last_frame = max(rec.last_frame, other["last"] or 0)
    span = rec.last_frame - (rec.first_frame or rec.last_frame)
    rate = rec.frames / span if span > 0 else float("nan")
    light_ms = rec.added_ms(light)
    if os.environ.get("BENCH_DUMP"):
        with open(os.environ["BENCH_DUMP"], "w") as f:
            for k, t in sorted(rec.client.items(), key=lambda kv: kv[1]):
                if k in rec.tap:
                    f.write(f"{rec.tap[k]:.6f} {(t - rec.tap[k]) * 1000:.3f} {k[0] in light} {k[0][:8]} {k[1]}\n")
    load_ms = rec.added_ms(set(load))
    print()
    print(f"events relayed to {CLIENTS} clients under load ({args.jobs} jobs x {args.steps} steps on 4 workers)")
    job_frames = rec.frames - rec.status_frames
    print(table(["frames to clients", "of which job events", "of which status", "seconds", "frames/s",
                 "job events/s", "job events the workers sent"],
                [[rec.frames, job_frames, rec.status_frames, f"{span:.2f}", f"{rate:.0f}",
                  f"{job_frames / span if span > 0 else float('nan'):.0f}", rec.tap_frames]]))
    print(f"CPU during the load phase ({wall:.1f} s wall, {os.cpu_count()} cores): " + ", ".join(
        f"{k} {v:.1f} s ({v / wall * 100:.0f} % of a core)" for k, v in cpu.items()))
    print()
    print("added latency of one event (progress frames, gateway client arrival - direct tap arrival), ms;"
          "   target p99 < 5 ms")
    print(table(["phase", "matched", "expected", "median", "p90", "p99", "max"],
                [latency_row(f"light (1 job at a time, {args.light_jobs} jobs)", light_ms,
                             args.light_jobs * args.steps),
                 latency_row(f"load (4 workers busy), {PROBES} clients of this process", probe_ms,
                             sum(1 for j in range(args.jobs) if (j * 7) % CLIENTS < PROBES) * args.steps),
                 latency_row(f"load (4 workers busy), all {CLIENTS} clients", load_ms, args.jobs * args.steps)]))
    print()
    print("re-run:", rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs in the load phase (default 40)")
    parser.add_argument("--light-jobs", type=int, default=6, help="jobs in the light phase (default 6)")
    parser.add_argument("--steps", type=int, default=100, help="KSampler steps per job (default 100)")
    parser.add_argument("--node-seconds", type=float, default=0.005,
                        help="simulator seconds per step (default 0.005: 2 frames per 5 ms per worker)")
    parser.add_argument("--swarm", help=argparse.SUPPRESS)  # internal: run as the child holding load clients
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.swarm:
        asyncio.run(swarm(arguments))
        raise SystemExit(0)
    try:
        asyncio.run(main(arguments))
    finally:
        stop_all()
