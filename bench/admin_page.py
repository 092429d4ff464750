"""The admin page with 50 workers and 10,000 jobs (issue 15): time to first render and to apply a filter.

Processes: 50 simulated workers in one process (``python -m tests.fake_comfy --fleet 50``, every job
lasting far longer than the bench, so each worker holds one and the rest wait in the gateway), the
gateway (SQLite), a load client submitting the jobs (bench/scale.py's), and headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright) opening the page.

Measured in the browser, from the start of the navigation (performance.now()), median of --repeat:
* overview: the cards show the counts, 50 worker tiles and the active jobs list are drawn;
* jobs: the first page of 50 rows is drawn;
* filter: from the click on a state chip ("running", then "queued") until the list shows the new total;
* search: from Enter in the top bar's search until the job's dialog opens.

Prints figures only; compare within a run (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import aiohttp
from _common import HOST, PYTHON, REPO, GatewayProc, rerun_line, spawn, stop_all, table, wait_http, workdir
from scale import register

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


async def fill(session, gateway: GatewayProc, run, jobs: int, concurrency: int) -> float:
    """Submit `jobs` jobs with scale.py's load client; seconds it took."""
    out = run / "submits.json"
    began = time.monotonic()
    proc = spawn([PYTHON, str(REPO / "bench" / "scale.py"), "--client", gateway.url, "--count", str(jobs),
                  "--concurrency", str(concurrency), "--out", str(out)], run / "client.log", REPO)
    while proc.poll() is None:
        await asyncio.sleep(0.2)
    statuses = [status for _, _, status in json.loads(out.read_text())]
    bad = [s for s in statuses if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} submissions failed, e.g. {bad[0]}")
    return time.monotonic() - began


async def measure(url: str, repeat: int, workers: int) -> dict:
    from playwright.async_api import async_playwright

    figures: dict[str, list[float]] = {"overview": [], "jobs": [], "filter running": [], "filter queued": [],
                                       "search": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for _ in range(repeat):
                context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
                page = await context.new_page()
                page.set_default_timeout(60000)
                await page.goto(url + "/#/overview")
                await page.wait_for_function(
                    "(n) => document.querySelectorAll('a.tile').length >= n"
                    " && /\\d/.test(document.querySelector('[data-card=\"jobs_queued\"] .card-value').textContent)"
                    " && document.querySelectorAll('.running-list li[data-prompt-id]').length > 0", arg=workers)
                figures["overview"].append(await page.evaluate("performance.now()"))
                await page.goto(url + "/#/jobs")
                await page.reload()  # a fresh load straight onto the jobs page
                await page.wait_for_function("() => document.querySelectorAll('.jobs-table tbody tr').length >= 50")
                figures["jobs"].append(await page.evaluate("performance.now()"))
                for state in ("running", "queued"):
                    before = await page.locator(".view-jobs .count").inner_text()
                    started = await page.evaluate("performance.now()")
                    await page.locator(f'label.chip-toggle[data-state="{state}"]').click()
                    await page.wait_for_function(
                        "(before) => document.querySelector('.view-jobs .count').textContent !== before"
                        " && !document.querySelector('.view-jobs').hasAttribute('aria-busy')", arg=before)
                    figures[f"filter {state}"].append(await page.evaluate("performance.now()") - started)
                    await page.locator(f'label.chip-toggle[data-state="{state}"]').click()
                    await page.wait_for_function(
                        "(before) => document.querySelector('.view-jobs .count').textContent === before", arg=before)
                prompt_id = await page.locator(".jobs-table tbody tr").nth(7).get_attribute("data-prompt-id")
                await page.fill("#job-search-input", prompt_id[:8])
                started = await page.evaluate("performance.now()")
                await page.press("#job-search-input", "Enter")
                await page.wait_for_selector("dialog.job-dialog ol.timeline li")
                figures["search"].append(await page.evaluate("performance.now()") - started)
                await context.close()
        finally:
            await browser.close()
    return {name: statistics.median(values) for name, values in figures.items()}


async def main(args) -> None:
    run = workdir("gw_bench_admin_page_")
    fleet_file = run / "fleet.txt"
    spawn([PYTHON, "-m", "tests.fake_comfy", "--fleet", str(args.workers), "--port", "0", "--fleet-file",
           str(fleet_file), "--node-seconds", "1000", "--log-level", "WARNING", "--data-dir", str(run / "fleet")],
          run / "fleet.log", REPO)
    while not fleet_file.exists():
        await asyncio.sleep(0.1)
    urls = fleet_file.read_text().split()
    gateway = GatewayProc(run, {"GATEWAY_LOG_LEVEL": "WARNING"})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session:
        await wait_http(session, gateway.url + "/healthz", gateway.proc)
        await register(session, gateway, urls)
        fill_seconds = await fill(session, gateway, run, args.jobs, args.concurrency)
        async with session.get(gateway.url + "/api/stats") as response:
            by_state = (await response.json())["jobs_by_state"]
    print(f"{args.workers} workers on {HOST}; {args.jobs} jobs submitted in {fill_seconds:.1f} s; "
          f"jobs by state: {by_state}")
    figures = await measure(gateway.url, args.repeat, args.workers)
    print(table(["page", "ms (median of %d)" % args.repeat],
                [[name, f"{value:.0f}"] for name, value in figures.items()]))
    print("overview and jobs: from the start of the navigation until drawn; filter and search: from the click "
          "or Enter until the answer is drawn")
    print("\nre-run:", rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        stop_all()
    sys.exit(0)
