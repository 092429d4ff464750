"""Submit-to-result time (issue 16): the 2 s polling loop of the old n8n guide against wait mode, the status
long poll and a webhook, on the same jobs, in one run.

One simulator and one gateway, each in its own process; this process plays n8n. Each round runs one job
per way, in a random order, one after the other (the worker has one job at a time, so no way waits for
another's job). A job is ComfyUI's txt2img graph lasting about --job-seconds on the simulator (0.35 s: the
job a real n8n run against real ComfyUI took in issue 16). Measured per job, from the submit to the last
byte of its image:

* poll 2 s: POST /api/prompt, GET /api/task/{id}/status every 2 s until done (the old guide's Wait
  node), GET /api/history/{id}, GET the image's url;
* long poll: POST /api/prompt, GET /api/task/{id}/status?wait=30 until done, GET history, GET the image;
* wait mode: POST /api/prompt with "wait": 60, GET the first of its files' urls;
* webhook: POST /api/prompt with "webhook", the gateway's POST arrives at a local receiver, GET its url.

Prints figures only (the machine is shared; compare the columns of one run, not runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time

import aiohttp
from _common import GatewayProc, Sim, free_port, percentile, register_workers, rerun_line, stop_all, table, \
    wait_http, workdir
from aiohttp import web

from tests.fake_comfy.workflows import ksampler_workflow

CHECKPOINT = "sd15.safetensors"
STEPS = 20


class Counter:
    """Requests one job's client sent."""

    def __init__(self):
        self.count = 0


async def _call(session, counter: Counter, method: str, url: str, **kwargs):
    counter.count += 1
    async with session.request(method, url, **kwargs) as response:
        body = await response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {url}: {response.status} {body[:300]!r}")
        return response.status, body


async def _json(session, counter, method, url, **kwargs):
    _, body = await _call(session, counter, method, url, **kwargs)
    return json.loads(body)


async def poll_every_2s(session, gateway: str, counter: Counter, interval: float = 2.0) -> None:
    answer = await _json(session, counter, "POST", gateway + "/api/prompt", json={"prompt": _workflow()})
    prompt_id = answer["prompt_id"]
    while True:
        status = await _json(session, counter, "GET", f"{gateway}/api/task/{prompt_id}/status")
        if status["status"] in ("done", "failed"):
            break
        await asyncio.sleep(interval)
    history = await _json(session, counter, "GET", f"{gateway}/api/history/{prompt_id}")
    await _call(session, counter, "GET", history[prompt_id]["outputs"]["9"]["images"][0]["url"])


async def long_poll(session, gateway: str, counter: Counter) -> None:
    answer = await _json(session, counter, "POST", gateway + "/api/prompt", json={"prompt": _workflow()})
    prompt_id = answer["prompt_id"]
    status = {"status": "queued"}
    while status["status"] not in ("done", "failed"):
        status = await _json(session, counter, "GET", f"{gateway}/api/task/{prompt_id}/status?wait=30")
    history = await _json(session, counter, "GET", f"{gateway}/api/history/{prompt_id}")
    await _call(session, counter, "GET", history[prompt_id]["outputs"]["9"]["images"][0]["url"])


async def wait_mode(session, gateway: str, counter: Counter) -> None:
    answer = await _json(session, counter, "POST", gateway + "/api/prompt", json={"prompt": _workflow(), "wait": 60})
    assert answer["state"] == "done", answer
    await _call(session, counter, "GET", answer["files"][0]["url"])


class Receiver:
    """Where the gateway's webhooks land (this process's own small server)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.arrived: dict[str, asyncio.Future] = {}

    async def start(self) -> "Receiver":
        async def hook(request):
            body = await request.json()
            future = self.arrived.setdefault(body["prompt_id"], asyncio.get_running_loop().create_future())
            if not future.done():
                future.set_result(body)
            return web.Response(text="ok")
        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self


async def webhook(session, gateway: str, counter: Counter, receiver: Receiver) -> None:
    answer = await _json(session, counter, "POST", gateway + "/api/prompt",
                         json={"prompt": _workflow(), "webhook": receiver.url})
    future = receiver.arrived.setdefault(answer["prompt_id"], asyncio.get_running_loop().create_future())
    body = await asyncio.wait_for(future, 60)
    await _call(session, counter, "GET", body["files"][0]["url"])


def _workflow() -> dict:
    return ksampler_workflow(steps=STEPS, ckpt=CHECKPOINT, prefix="bench/n8n")


async def main(args) -> None:
    work = workdir("bench-n8n-")
    node_seconds = args.job_seconds / (STEPS + 6)  # the simulator's KSampler graph: (steps + 6) node times
    sim = Sim(work, node_seconds=node_seconds, models=f"checkpoints={CHECKPOINT}")
    gateway = GatewayProc(work)
    receiver = await Receiver().start()
    ways = {"poll 2 s": poll_every_2s, "long poll": long_poll, "wait mode": wait_mode,
            "webhook": lambda s, g, c: webhook(s, g, c, receiver)}
    timings: dict[str, list[float]] = {name: [] for name in ways}
    requests: dict[str, list[int]] = {name: [] for name in ways}
    async with aiohttp.ClientSession() as session:
        await wait_http(session, sim.url + "/system_stats", sim.proc)
        await wait_http(session, gateway.url + "/healthz", gateway.proc)
        await register_workers(session, gateway.url, [sim])
        for name, way in ways.items():  # warm-up: one job each
            await way(session, gateway.url, Counter())
        order = list(ways)
        for _ in range(args.rounds):
            random.shuffle(order)
            for name in order:
                counter = Counter()
                started = time.perf_counter()
                await ways[name](session, gateway.url, counter)
                timings[name].append(time.perf_counter() - started)
                requests[name].append(counter.count)
        tasks = await (await session.get(gateway.url + "/api/tasks?limit=500&state=done")).json()
    runs = [item["run_seconds"] for item in tasks["items"] if item["run_seconds"] is not None]
    await receiver.runner.cleanup()
    print(f"\n{args.rounds} jobs per way; job run time on the worker: median {statistics.median(runs):.3f} s "
          f"(txt2img, {STEPS} steps, node_seconds {node_seconds:.4f})\n")
    rows = []
    for name in ways:
        values = timings[name]
        rows.append((name, f"{statistics.median(values):.3f}", f"{percentile(values, 90):.3f}", f"{min(values):.3f}",
                     f"{max(values):.3f}", f"{statistics.mean(requests[name]):.1f}"))
    print(table(("way", "median s", "p90 s", "min s", "max s", "requests/job"), rows))
    print("\nsubmit to the image's last byte; n8n's own node overhead is not included")
    print(rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="jobs per way (default 10)")
    parser.add_argument("--job-seconds", type=float, default=0.35, help="job length on the simulator (0.35)")
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        stop_all()
