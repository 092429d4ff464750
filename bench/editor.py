"""How long the ComfyUI editor takes to load through the gateway, against the same editor straight from
the worker, in one run (headless Chromium, loopback).

Columns: direct from the simulator; through the gateway with its cache empty (first user after a start
or a worker change); through the gateway with the cache warm (the next user); a reload in the same
browser (the browser revalidates every .js/.css, ComfyUI sends no-cache). Each case runs --rounds
times in a fresh browser context (empty browser cache, except for the reload), in turn, and prints the
median and the worst time until the editor is ready (app and graph up, the custom node extension
loaded), the requests and bytes the page fetched, and the gateway's CPU and memory.

    .venv/bin/python bench/editor.py [--rounds 3] [--frontend 1.27.10|1.58.1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp
from _common import (GatewayProc, Sim, cpu_seconds, read_status_kb, register_workers, rerun_line, stop_all, table,
                     wait_http, workdir)
from playwright.async_api import async_playwright

from tests.fake_comfy.frontends import PINNED, ensure_frontend

READY = "() => window.app && window.app.graph && document.querySelector('canvas') && window.gatewayProbe?.loaded"
CHROMIUM = "/usr/bin/chromium"


async def load(browser, url: str, context=None) -> tuple[float, int, int, object]:
    """(seconds until ready, requests, bytes) of one page load; the context is returned for a reload."""
    context = context or await browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.pages[0] if context.pages else await context.new_page()
    counts = {"requests": 0, "bytes": 0}

    tasks = []

    async def on_finished(request):
        counts["requests"] += 1
        sizes = await request.sizes()
        counts["bytes"] += sizes.get("responseBodySize", 0)

    def listener(request):
        tasks.append(asyncio.ensure_future(on_finished(request)))

    page.on("requestfinished", listener)
    started = time.perf_counter()
    if page.url == url:
        await page.reload()
    else:
        await page.goto(url)
    await page.wait_for_function(READY, timeout=120000)
    elapsed = time.perf_counter() - started
    await page.wait_for_timeout(300)
    page.remove_listener("requestfinished", listener)
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed, counts["requests"], counts["bytes"], context


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frontend", default=PINNED)
    args = parser.parse_args()
    root = ensure_frontend(args.frontend)
    work = workdir("bench_editor_")
    sim = Sim(work, extra_args=["--front-end-root", str(root)])
    gateway = GatewayProc(work)
    results: dict[str, list] = {"direct": [], "gateway, cache empty": [], "gateway, cache warm": [],
                                "gateway, browser reload": []}
    try:
        async with aiohttp.ClientSession() as session:
            await wait_http(session, sim.url + "/system_stats", sim.proc)
            await wait_http(session, gateway.url + "/healthz", gateway.proc)
            await register_workers(session, gateway.url, [sim])
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
                rss_before = read_status_kb(gateway.pid, "VmRSS")
                cpu_before = cpu_seconds(gateway.pid)
                for round_ in range(args.rounds):
                    if round_:  # empty the gateway's cache: a lower limit is applied at the next request
                        for body, path in (({"editor_cache_mb": 0}, None), ({"editor_cache_mb": 64}, None)):
                            async with session.patch(gateway.url + "/api/settings", json=body) as r:
                                await r.read()
                            if body["editor_cache_mb"] == 0:
                                async with session.get(gateway.url + "/comfy/") as r:
                                    await r.read()
                    *direct, context = await load(browser, sim.url + "/")
                    await context.close()
                    results["direct"].append(direct)
                    *cold, context = await load(browser, gateway.url + "/comfy/")
                    await context.close()
                    results["gateway, cache empty"].append(cold)
                    *warm, context = await load(browser, gateway.url + "/comfy/")
                    results["gateway, cache warm"].append(warm)
                    *reload, context = await load(browser, gateway.url + "/comfy/", context)
                    await context.close()
                    results["gateway, browser reload"].append(reload)
                cpu = cpu_seconds(gateway.pid) - cpu_before
                rss_after = read_status_kb(gateway.pid, "VmRSS")
                await browser.close()
    finally:
        stop_all()
    rows = []
    for name, runs in results.items():
        times = [r[0] for r in runs]
        rows.append([name, f"{statistics.median(times):.2f}", f"{max(times):.2f}", runs[-1][1],
                     f"{runs[-1][2] / 1e6:.1f}"])
    print(f"ComfyUI frontend {args.frontend}, {args.rounds} rounds, one simulator, gateway with default settings\n")
    print(table(["case", "ready s (median)", "worst s", "requests", "MB fetched"], rows))
    print(f"\ngateway CPU over all gateway loads: {cpu:.2f} s; RSS {rss_before / 1024:.1f} MB before, "
          f"{rss_after / 1024:.1f} MB after")
    print("\nre-run: " + rerun_line())


if __name__ == "__main__":
    asyncio.run(main())
