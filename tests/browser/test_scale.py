"""The admin page stays responsive with 50 workers and 10,000 jobs: the job list is paged by the API."""

from __future__ import annotations

import time

from playwright.async_api import expect

from tests.harness import Cluster, free_port

from .helpers import bulk_insert, job_row

WORKERS = 50
JOBS = 10_000
PAGE = 50


async def test_fifty_workers_ten_thousand_jobs(tmp_path, ui_routes, open_page):
    cluster = Cluster(tmp_path / "gw", GATEWAY_HEALTH_INTERVAL=1)
    await cluster.start()
    try:
        port = free_port()  # nobody listens there: the 50 workers are unreachable on purpose
        ids = []
        for i in range(WORKERS):
            answer = await cluster.post("/api/workers", {"url": f"http://127.0.0.1:{port}/gpu{i:02d}",
                                                         "name": f"render-{i:02d}"})
            ids.append(answer["id"])
        now = time.time()
        states = ["done"] * 7 + ["failed", "queued", "done"]
        rows = [job_row(seq + 1, states[seq % len(states)], now - 60 * 60 * 24 + seq * 8.0,
                        ids[seq % WORKERS] if states[seq % len(states)] != "queued" else None,
                        client_id=f"client-{seq % 7}")
                for seq in range(JOBS)]
        await bulk_insert(cluster.gateway.store, rows)

        probe = await open_page(cluster.url + "/#/jobs")
        page = probe.page
        body_rows = page.locator(".jobs-table tbody tr")
        started = time.perf_counter()
        await expect(body_rows).to_have_count(PAGE)
        first_page = time.perf_counter() - started
        await expect(page.locator(".view-jobs .count")).to_have_text("10,000 jobs")
        await expect(page.locator(".pager")).to_contain_text("of 200")
        assert first_page < 3.0, f"first page took {first_page:.2f} s"
        # The DOM holds one page, not the store.
        assert await page.evaluate("document.querySelectorAll('tr[data-prompt-id]').length") == PAGE

        # Paging and filtering ask the API again and keep one page in the DOM.
        first_id = await body_rows.first.get_attribute("data-prompt-id")
        started = time.perf_counter()
        await page.click("#page-next")
        await expect(page.locator("#page-input")).to_have_value("2")
        await expect(body_rows.first).not_to_have_attribute("data-prompt-id", first_id)
        assert time.perf_counter() - started < 2.0
        await expect(body_rows).to_have_count(PAGE)
        await page.fill("#page-input", "200")
        await page.press("#page-input", "Enter")
        await expect(body_rows).to_have_count(PAGE)
        await expect(page.locator(".pager .range")).to_contain_text("9,951–10,000 of 10,000")
        await page.locator('label.chip-toggle[data-state="failed"]').click()
        await expect(page.locator(".view-jobs .count")).to_have_text("1,000 jobs")
        await expect(page.locator("#page-input")).to_have_value("1")
        await page.select_option("#filter-worker", label="render-07")
        await expect(page.locator(".view-jobs .count")).to_have_text("200 jobs")
        assert await body_rows.count() == PAGE

        # 50 workers (all unreachable, their health changing all the time) render as 50 rows.
        await page.click('.tabs a[data-view="workers"]')
        await expect(page.locator("tr[data-worker-id]")).to_have_count(WORKERS)
        await expect(page.locator("tr[data-worker-id] .badge", has_text="offline")).to_have_count(WORKERS,
                                                                                                  timeout=15000)
        # Still responsive while worker events stream in: a round trip into the page stays quick.
        slowest = 0.0
        for _ in range(10):
            started = time.perf_counter()
            await page.evaluate("1")
            slowest = max(slowest, time.perf_counter() - started)
            await page.wait_for_timeout(100)
        assert slowest < 0.5, f"page blocked for {slowest:.2f} s"
        await page.click('.tabs a[data-view="overview"]')
        await expect(page.locator('[data-card="workers_online"] .card-value')).to_have_text("0 / 50")
        await expect(page.locator('[data-card="jobs_done"] .card-value')).to_have_text("8,000")
        assert probe.errors == [], probe.errors
    finally:
        await cluster.stop()
