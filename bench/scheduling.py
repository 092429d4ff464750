"""Scheduling quality (issue 3): makespan / lower bound on a mixed cluster, gateway vs the seed's naive policy.

Four simulators of speeds 1, 2, 3, 4 (each its own process) and one gateway (its own process, workers
registered with the defaults, i.e. max_queue 1). One job list: durations spread 10x (log-uniform between
--min-seconds and 10x that, at speed 1), shuffled once with a fixed seed. The same list runs twice:

* gateway: every job POSTed to the gateway at once (sequentially, as fast as it answers);
* naive (the seed's policy, no gateway): for each job the bench asks every simulator GET /prompt and
  POSTs the job to the one with the smallest queue_remaining (ties: the first).

Makespan = first submit to last completion (``executing`` with ``node: null`` for the job, seen on a
WebSocket: the gateway's /api/ws for the gateway run, each simulator's /ws for the naive run).
Lower bound = total work at speed 1 / total speed. Each run uses new colours, so nothing is cached.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

import aiohttp
from _common import GatewayProc, Sim, register_workers, rerun_line, stop_all, table, wait_http, workdir

from tests.fake_comfy.workflows import ksampler_workflow

NODE_SECONDS = 0.02
MODELS = "checkpoints=sd15.safetensors"
SPEEDS = (1, 2, 3, 4)


def job_list(n: int, min_seconds: float, seed: int) -> list[tuple[float, int]]:
    """[(seconds at speed 1, sampler steps)] for n jobs, durations log-uniform over [min, 10*min].

    Duration comes from KSampler steps ((steps + 6) * node_seconds at speed 1) on a 64x64 image, so
    the simulators spend their time waiting as a GPU would, not encoding big PNGs on the shared CPU.
    """
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        target = min_seconds * 10 ** (i / max(1, n - 1))  # evenly spread in log space, then shuffled
        steps = max(1, round(target / NODE_SECONDS) - 6)
        jobs.append((NODE_SECONDS * (steps + 6), steps))
    rng.shuffle(jobs)
    return jobs


class Completions:
    """Listens on WebSockets and records when each prompt finished (executing node null)."""

    def __init__(self):
        self.done: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.event = asyncio.Event()
        self.expected: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self._sockets = []

    async def listen(self, session: aiohttp.ClientSession, ws_url: str) -> None:
        ws = await session.ws_connect(ws_url, max_msg_size=0)
        self._sockets.append(ws)
        self._tasks.append(asyncio.ensure_future(self._read(ws)))

    async def _read(self, ws) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            if '"executing"' not in msg.data and '"execution_error"' not in msg.data:
                continue
            data = msg.json()
            body = data.get("data") or {}
            pid = body.get("prompt_id")
            if data.get("type") == "execution_error" and pid:
                self.errors[pid] = body.get("exception_message", "error")
            if data.get("type") == "executing" and body.get("node") is None and pid:
                self.done.setdefault(pid, now)
                if self.expected and self.expected <= self.done.keys():
                    self.event.set()

    async def close(self) -> None:
        for ws in self._sockets:
            await ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def wait_all(listener: Completions, ids: list[str], timeout: float, session, status_url) -> None:
    """Wait until every job completed; on timeout say which did not (and what the gateway says of them)."""
    listener.expected = set(ids)
    if listener.expected <= listener.done.keys():
        return
    try:
        await asyncio.wait_for(listener.event.wait(), timeout)
    except asyncio.TimeoutError:
        missing = [p for p in ids if p not in listener.done]
        detail = ""
        if status_url:
            async with session.get(status_url.format(missing[0])) as r:
                detail = f"; first missing job's status: {await r.text()}"
        raise RuntimeError(f"{len(missing)} of {len(ids)} jobs not completed after {timeout:.0f} s{detail}")


async def run_times(session, history_url: str, ids: list[str], where: dict) -> dict:
    """Per worker: [(start, end)] of its jobs, from the history messages' timestamps (the worker's clock)."""
    spans: dict[str, list] = {}
    for pid in ids:
        async with session.get(history_url.format(pid)) as r:
            entry = (await r.json()).get(pid) or {}
        stamps = {m[0]: m[1].get("timestamp") for m in (entry.get("status") or {}).get("messages", [])}
        if stamps.get("execution_start") and stamps.get("execution_success"):
            spans.setdefault(where[pid], []).append((stamps["execution_start"] / 1000,
                                                     stamps["execution_success"] / 1000))
    return spans


def idle_gaps(spans: dict) -> list[float]:
    """Seconds each worker sat idle between the end of one job and the start of its next."""
    gaps = []
    for runs in spans.values():
        runs.sort()
        gaps += [max(0.0, b[0] - a[1]) for a, b in zip(runs, runs[1:])]
    return gaps


async def run_gateway(session, gw: GatewayProc, jobs, timeout: float) -> dict:
    """All jobs through the gateway; returns makespan, per-worker counts."""
    listener = Completions()
    await listener.listen(session, gw.url.replace("http", "ws") + "/api/ws?clientId=bench-sched")
    await asyncio.sleep(0.2)
    ids = []
    t0 = time.perf_counter()
    for _, steps in jobs:
        async with session.post(gw.url + "/api/prompt", json={"prompt": ksampler_workflow(steps=steps, width=64, height=64),
                                                                "client_id": "bench-sched"}) as r:
            answer = await r.json()
            if r.status != 200:
                raise RuntimeError(f"gateway refused a job: {r.status} {answer}")
            ids.append(answer["prompt_id"])
    submitted = time.perf_counter() - t0
    await wait_all(listener, ids, timeout, session, gw.url + "/api/task/{}/status")
    makespan = max(listener.done[p] for p in ids) - t0
    await listener.close()
    counts: dict[str, int] = {}
    last: dict[str, float] = {}
    for pid in ids:
        async with session.get(f"{gw.url}/api/task/{pid}/status") as r:
            status = await r.json()
        if status.get("status") != "done":
            raise RuntimeError(f"job {pid} ended {status}")
        counts[status.get("worker")] = counts.get(status.get("worker"), 0) + 1
        last[status.get("worker")] = max(last.get(status.get("worker"), 0.0), listener.done[pid] - t0)
    where = {}
    for pid in ids:
        async with session.get(f"{gw.url}/api/task/{pid}/status") as r:
            where[pid] = (await r.json()).get("worker")
    spans = await run_times(session, gw.url + "/api/history/{}", ids, where)
    modeled = sum(sec / float(where[pid].rsplit("_s", 1)[-1]) for pid, (sec, _) in zip(ids, jobs))
    return {"modeled_busy": modeled, "makespan": makespan, "counts": counts, "last": last, "submit_seconds": submitted,
            "errors": listener.errors, "spans": spans}


async def run_naive(session, sims: list[Sim], jobs, timeout: float) -> dict:
    """The seed's policy: each job at once to the simulator with the shortest queue."""
    listener = Completions()
    for sim in sims:
        await listener.listen(session, sim.url.replace("http", "ws") + "/ws?clientId=bench-naive")
    await asyncio.sleep(0.2)
    ids, where = [], {}
    t0 = time.perf_counter()
    for _, steps in jobs:
        queues = []
        for sim in sims:
            async with session.get(sim.url + "/prompt") as r:
                queues.append((await r.json())["exec_info"]["queue_remaining"])
        target = sims[queues.index(min(queues))]
        async with session.post(target.url + "/prompt", json={"prompt": ksampler_workflow(steps=steps, width=64, height=64),
                                                               "client_id": "bench-naive"}) as r:
            answer = await r.json()
            if r.status != 200:
                raise RuntimeError(f"simulator refused a job: {r.status} {answer}")
        ids.append(answer["prompt_id"])
        where[answer["prompt_id"]] = f"speed {target.speed:g}"
    submitted = time.perf_counter() - t0
    await wait_all(listener, ids, timeout, session, None)
    makespan = max(listener.done[p] for p in ids) - t0
    await listener.close()
    counts: dict[str, int] = {}
    last: dict[str, float] = {}
    for pid in ids:
        counts[where[pid]] = counts.get(where[pid], 0) + 1
        last[where[pid]] = max(last.get(where[pid], 0.0), listener.done[pid] - t0)
    spans = {}
    for sim in sims:
        mine = [p for p in ids if where[p] == f"speed {sim.speed:g}"]
        spans.update(await run_times(session, sim.url + "/history/{}", mine, where))
    modeled = sum(sec / float(where[pid].split()[-1]) for pid, (sec, _) in zip(ids, jobs))
    return {"modeled_busy": modeled, "makespan": makespan, "counts": counts, "last": last, "submit_seconds": submitted,
            "errors": listener.errors, "spans": spans}


async def main(args) -> None:
    jobs = job_list(args.jobs, args.min_seconds, args.seed)
    total_work = sum(s for s, _ in jobs)
    bound = total_work / sum(SPEEDS)
    work = workdir("bench_sched_")
    sims = [Sim(work, speed=s, node_seconds=NODE_SECONDS, models=MODELS, name=f"sim_speed{s}") for s in SPEEDS]
    gw = GatewayProc(work)
    timeout = max(120.0, bound * 10)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for sim in sims:
            await wait_http(session, sim.url + "/system_stats", sim.proc)
        await wait_http(session, gw.url + "/healthz", gw.proc)
        await register_workers(session, gw.url, sims)
        durations = [s for s, _ in jobs]
        print(f"{len(jobs)} jobs, {min(durations):.2f}-{max(durations):.2f} s at speed 1 "
              f"(median {statistics.median(durations):.2f} s), total work {total_work:.1f} s; speeds {SPEEDS}; "
              f"lower bound {bound:.2f} s")
        results = {}
        order = ["gateway", "naive"] if not args.naive_first else ["naive", "gateway"]
        for policy in order:
            if policy == "gateway":
                results[policy] = await run_gateway(session, gw, jobs, timeout)
                async with session.get(gw.url + "/api/workers") as r:
                    by_name = {w["name"]: f"speed {w['name'].split('_s')[-1]}" for w in await r.json()}
                for key in ("counts", "last"):
                    results[policy][key] = {by_name.get(k, k): v for k, v in results[policy][key].items()}
            else:
                results[policy] = await run_naive(session, sims, jobs, timeout)
            print(f"  {policy}: makespan {results[policy]['makespan']:.2f} s")
            await asyncio.sleep(1.0)

    print()
    print("makespan / lower bound (lower is better; 1.00 is perfect)   target for the gateway: <= 1.10")
    rows = []
    for policy in ("gateway", "naive"):
        r = results[policy]
        counts = " ".join(f"{r['counts'].get(f'speed {s}', 0):>3}" for s in SPEEDS)
        ends = " ".join(f"{r['last'].get(f'speed {s}', 0):5.1f}" for s in SPEEDS)
        rows.append([policy, f"{r['makespan']:.2f}", f"{r['makespan'] / bound:.3f}", counts, ends,
                     f"{r['submit_seconds']:.2f}", len(r["errors"])])
    print(table(["policy", "makespan s", "/ bound", "jobs on speed 1 2 3 4", "last done s on 1 2 3 4",
                 "submit s", "errors"], rows))
    print()
    print("where the time goes (from the workers' own execution_start/execution_success timestamps; 'modeled' is"
          " the sum of\nthe jobs' nominal durations on the workers they ran on, 'measured' what the simulators took)")
    rows = []
    for policy in ("gateway", "naive"):
        spans = results[policy]["spans"]
        gaps = idle_gaps(spans)
        busy = sum(e - b for runs in spans.values() for b, e in runs)
        rows.append([policy, sum(len(r) for r in spans.values()), f"{results[policy]['modeled_busy']:.1f}",
                     f"{busy:.1f}", f"{results[policy]['makespan'] / (busy / len(SPEEDS)):.3f}",
                     f"{statistics.median(gaps) * 1000:.0f}" if gaps else "-",
                     f"{sum(gaps):.1f}"])
    print(table(["policy", "jobs timed", "busy s modeled", "busy s measured", "makespan / (busy/4)",
                 "median idle gap between jobs, ms",
                 "idle gaps s (sum over workers)"], rows))

    print(f"ideal share of jobs by speed: {' '.join(f'{len(jobs) * s / sum(SPEEDS):.0f}' for s in SPEEDS)}")
    print()
    print("re-run:", rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120, help="number of jobs (default 120)")
    parser.add_argument("--min-seconds", type=float, default=0.2,
                        help="shortest job at speed 1; the longest is 10x (default 0.2)")
    parser.add_argument("--seed", type=int, default=3, help="shuffle seed (default 3)")
    parser.add_argument("--naive-first", action="store_true", help="run the naive policy first")
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        stop_all()
