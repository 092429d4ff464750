"""Gateway overhead (issue 2): POST /prompt latency and /view throughput, direct vs through the gateway.

One simulator and one gateway, each in its own process; this process is the load generator.

* Submit latency: N sequential POST /prompt per path over keep-alive connections, interleaved (each
  pair in random order), after a warm-up. The simulator first gets one very long job, so every later
  submission only queues there (no execution competes for the CPU). The worker is registered with
  max_queue 1000 so the gateway's fast path forwards every submission at once.
* Download: a 50 MB file placed in the simulator's output dir, fetched with GET /view directly and
  through the gateway (no prompt_id, as a ComfyUI client does), interleaved rounds, by two clients:
  a lean one (a blocking socket reading into one reused 1 MB buffer, so the client costs next to
  nothing and the servers are what is measured) and aiohttp (a typical Python client, whose own CPU
  per byte is often the limit on this 2-core machine). Then a 200 MB file three times each way. The
  gateway's memory (VmRSS sampled every 5 ms, and VmHWM) is reported per phase.

Prints figures only (the machine is shared; compare the columns of one run, not runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import threading
import time
import uuid
from pathlib import Path

import aiohttp
from _common import (
    GatewayProc,
    Sim,
    cpu_seconds,
    percentile,
    read_status_kb,
    register_workers,
    rerun_line,
    stop_all,
    table,
    wait_http,
    workdir,
)

from tests.fake_comfy.workflows import sample_workflow, slow_workflow

MB = 1024 * 1024


def write_file(path, size: int) -> None:
    """A file of `size` bytes of incompressible data."""
    block = os.urandom(MB)
    with open(path, "wb") as f:
        for _ in range(size // MB):
            f.write(block)


class RssSampler:
    """Samples VmRSS of a pid in a thread; peak() per phase."""

    def __init__(self, pid: int, interval: float = 0.005):
        self.pid, self.interval = pid, interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = read_status_kb(self.pid, "VmRSS") or 0
            self._peak = max(self._peak, rss)
            time.sleep(self.interval)

    def __enter__(self):
        self._peak = read_status_kb(self.pid, "VmRSS") or 0
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self._peak / 1024


async def post_prompt(session: aiohttp.ClientSession, url: str, body: dict) -> float:
    """Seconds for one POST /prompt (the answer read completely); raises on a non-200."""
    t0 = time.perf_counter()
    async with session.post(url + "/prompt", json=body) as r:
        answer = await r.read()
        if r.status != 200:
            raise RuntimeError(f"POST {url}/prompt: {r.status} {answer[:300]!r}")
    return time.perf_counter() - t0


async def bench_submit(direct: aiohttp.ClientSession, via: dict, sim: Sim, n: int, warmup: int) -> dict:
    """Latency samples (seconds) per path: direct to the simulator, and through each gateway in `via`
    ({path name: (session, gateway)})."""
    rng = random.Random(1)
    samples = {"direct": [], **{name: [] for name in via}}
    for i in range(warmup + n):
        order = list(samples)
        rng.shuffle(order)
        for path in order:
            wf = sample_workflow(size=64)
            if path == "direct":
                # the gateway passes its own prompt_id to the worker; do the same directly
                took = await post_prompt(direct, sim.url, {"prompt": wf, "client_id": "bench-direct",
                                                           "prompt_id": str(uuid.uuid4())})
            else:
                session, gateway = via[path]
                took = await post_prompt(session, gateway.url, {"prompt": wf, "client_id": "bench-gw"})
            if i >= warmup:
                samples[path].append(took)
    return samples


async def download(session: aiohttp.ClientSession, url: str, filename: str) -> tuple[float, int]:
    """(seconds, bytes) of one GET /view read to the end in 256 kB chunks."""
    t0 = time.perf_counter()
    size = 0
    async with session.get(url + "/view", params={"filename": filename, "subfolder": "", "type": "output"}) as r:
        if r.status != 200:
            raise RuntimeError(f"GET {url}/view {filename}: {r.status}")
        async for chunk in r.content.iter_chunked(256 * 1024):
            size += len(chunk)
    return time.perf_counter() - t0, size


def lean_download_blocking(url: str, filename: str) -> tuple[float, int]:
    """(seconds, body bytes) of one GET /view on a fresh connection, read into one reused buffer."""
    host, port = url.split("//", 1)[1].split(":")
    buffer = bytearray(MB)
    view = memoryview(buffer)
    t0 = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"GET /view?filename={filename}&subfolder=&type=output HTTP/1.1\r\nHost: {host}\r\n"
                     "Connection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        head, body = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"GET {url}/view {filename}: {head[:60]!r}")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        size = len(body)
        while size < length:
            n = sock.recv_into(view)
            if not n:
                break
            size += n
    return time.perf_counter() - t0, size


async def lean_download(url: str, filename: str) -> tuple[float, int]:
    """lean_download_blocking in a thread (the blocking reads then cost no event-loop turns)."""
    return await asyncio.get_running_loop().run_in_executor(None, lean_download_blocking, url, filename)


async def bench_download(session: aiohttp.ClientSession, sim: Sim, gw: GatewayProc, rounds: int) -> dict:
    """Throughput samples (MB/s) per client and path for the 50 MB file, and memory per phase."""
    rng = random.Random(2)
    mbps = {(client, path): [] for client in ("lean", "aiohttp") for path in ("direct", "gateway")}
    pids = {"client": os.getpid(), "gateway": gw.pid, "simulator": sim.proc.pid}
    cpu = {run: dict.fromkeys(pids, 0.0) for run in mbps}  # CPU seconds per process, summed over rounds
    memory = {"before downloads": (read_status_kb(gw.pid, "VmRSS") / 1024, read_status_kb(gw.pid, "VmHWM") / 1024)}
    await download(session, gw.url, "big50.bin")  # warm-up (the gateway learns where the file is)
    peak50 = 0.0
    for _ in range(rounds):
        runs = list(mbps)
        rng.shuffle(runs)
        for client, path in runs:
            url = sim.url if path == "direct" else gw.url
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            with RssSampler(gw.pid) as sampler:
                if client == "lean":
                    took, size = await lean_download(url, "big50.bin")
                else:
                    took, size = await download(session, url, "big50.bin")
            for name, pid in pids.items():
                cpu[client, path][name] += cpu_seconds(pid) - cpu0[name]
            if path == "gateway":
                peak50 = max(peak50, sampler.peak_mb)
            assert size == 50 * MB, size
            mbps[client, path].append(size / MB / took)
    memory["during 50 MB downloads"] = (peak50, read_status_kb(gw.pid, "VmHWM") / 1024)
    mbps200 = {"direct": [], "gateway": []}
    peak200 = 0.0
    for _ in range(3):
        took, size = await lean_download(sim.url, "big200.bin")
        mbps200["direct"].append(200 / took)
        with RssSampler(gw.pid) as sampler:
            took, size = await lean_download(gw.url, "big200.bin")
        assert size == 200 * MB, size
        mbps200["gateway"].append(200 / took)
        peak200 = max(peak200, sampler.peak_mb)
    memory["during 200 MB downloads"] = (peak200, read_status_kb(gw.pid, "VmHWM") / 1024)
    return {"mbps": mbps, "memory": memory, "cpu": cpu,
            "mbps200": (statistics.median(mbps200["direct"]), statistics.median(mbps200["gateway"]))}


async def main(args) -> None:
    work = workdir("bench_overhead_")
    sim = Sim(work, node_seconds=1.0)  # queued jobs never run: only the first, long one does
    gw = GatewayProc(work)
    # A second gateway from another tree (an older version) with a simulator of its own, measured in
    # the same interleaved rounds: "before and after" side by side in one run.
    base = (Sim(work, node_seconds=1.0), GatewayProc(work, root=args.baseline_root, name="baseline")) \
        if args.baseline_root else None
    conn = dict(limit=1, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as admin, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(**conn), timeout=timeout) as direct, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(**conn), timeout=timeout) as via, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(**conn), timeout=timeout) as via_base:
        await wait_http(admin, sim.url + "/system_stats", sim.proc)
        await wait_http(admin, gw.url + "/healthz", gw.proc)
        gateways = {"gateway": (via, gw)}
        if base:
            await wait_http(admin, base[0].url + "/system_stats", base[0].proc)
            await wait_http(admin, base[1].url + "/healthz", base[1].proc)
            await post_prompt(admin, base[0].url, {"prompt": slow_workflow(3600, node_seconds=1.0)})
            await register_workers(admin, base[1].url, [base[0]], max_queue=1000)
            gateways["baseline"] = (via_base, base[1])
        for name, size in (("big50.bin", 50 * MB), ("big200.bin", 200 * MB)):
            write_file(sim.output_dir / name, size)
        # One job long enough to outlast the bench, so the others only queue.
        await post_prompt(admin, sim.url, {"prompt": slow_workflow(3600, node_seconds=1.0)})
        await register_workers(admin, gw.url, [sim], max_queue=1000)
        print(f"simulator pid {sim.proc.pid} {sim.url}; gateway pid {gw.pid} {gw.url}")

        # Downloads first, while the worker holds one job: after the submit phase it holds hundreds,
        # and the gateway's health check then reads (and the simulator writes) a /queue of megabytes
        # every 2 s, which would be measured along with the downloads.
        down = await bench_download(direct, sim, gw, args.rounds) if args.rounds else None
        samples = await bench_submit(direct, gateways, sim, args.n, args.warmup)

    ms = {k: [v * 1000 for v in vals] for k, vals in samples.items()}
    rows = []
    for path in ms:
        v = ms[path]
        thirds = [statistics.median(v[i * len(v) // 3:(i + 1) * len(v) // 3]) for i in range(3)]
        rows.append([path, len(v), f"{statistics.median(v):.2f}", f"{percentile(v, 90):.2f}",
                     f"{percentile(v, 99):.2f}", f"{statistics.mean(v):.2f}",
                     " / ".join(f"{t:.2f}" for t in thirds)])
    added_med = statistics.median(ms["gateway"]) - statistics.median(ms["direct"])
    added_p90 = percentile(ms["gateway"], 90) - percentile(ms["direct"], 90)
    print()
    print(f"POST /prompt latency, ms (sequential, keep-alive, interleaved; {args.warmup} warm-up pairs dropped)")
    print(table(["path", "n", "median", "p90", "p99", "mean", "median by thirds of the run"], rows))
    print(f"added by the gateway: median {added_med:+.2f} ms, p90 {added_p90:+.2f} ms   (target < 2 ms)")
    if "baseline" in ms:
        print(f"added by the baseline gateway ({args.baseline_root}): median "
              f"{statistics.median(ms['baseline']) - statistics.median(ms['direct']):+.2f} ms, p90 "
              f"{percentile(ms['baseline'], 90) - percentile(ms['direct'], 90):+.2f} ms")
    if down is None:
        print()
        print("re-run:", rerun_line())
        return

    mbps = down["mbps"]
    print()
    print(f"GET /view of a 50 MB file, MB/s ({args.rounds} interleaved rounds per client and path)")
    rows = []
    for client in ("lean", "aiohttp"):
        direct, via = mbps[client, "direct"], mbps[client, "gateway"]
        for path, values in (("direct", direct), ("gateway", via)):
            ratio = f"{statistics.median(via) / statistics.median(direct) * 100:.0f} %" if path == "gateway" else ""
            rows.append([client, path, f"{statistics.median(values):.0f}", f"{min(values):.0f}",
                         f"{max(values):.0f}", ratio])
    print(table(["client", "path", "median", "min", "max", "gateway / direct", "CPU s per GB: client",
                 "gateway", "simulator"],
                [row + [f"{down['cpu'][row[0], row[1]][name] / (len(mbps[row[0], row[1]]) * 50 / 1024):.2f}"
                        for name in ("client", "gateway", "simulator")] for row in rows]))
    d200, g200 = down["mbps200"]
    print(f"target: gateway >= 80 % of direct;  200 MB, median of 3 (lean client): direct {d200:.0f} MB/s, "
          f"gateway {g200:.0f} MB/s ({g200 / d200 * 100:.0f} %)")
    print()
    print("gateway process memory, MB")
    print(table(["phase", "peak VmRSS (sampled)", "VmHWM (peak since start)"],
                [[k, f"{a:.1f}", f"{b:.1f}"] for k, (a, b) in down["memory"].items()]))
    print()
    print("re-run:", rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="submissions per path (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up pairs, not counted (default 20)")
    parser.add_argument("--rounds", type=int, default=8,
                        help="50 MB download rounds per client and path (default 8; 0 skips the downloads)")
    parser.add_argument("--baseline-root", type=Path, default=None,
                        help="also submit through a gateway run from this tree (e.g. a worktree of main), "
                             "interleaved with the others: before and after in one run")
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        stop_all()
