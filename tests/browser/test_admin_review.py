"""The points of the admin page review (issue 15), each in real headless Chromium against simulators.

Every test here would have failed on the page before the fix it names: queue position one too high,
"Waited" frozen at the moment the page saw a job arrive, an offline worker still showing a job that
was retried elsewhere, overview listing only jobs this browser saw arrive, filtered lists going
stale, a workflow the worker rejected counted as a failed job, a failed test saved silently, a 390 px
phone cutting off the page, English durations and server messages in Chinese, node ids instead of
node types. Plus search by id prefix from every page and the "last updated" time next to Live.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.fake_comfy import sample_workflow, slow_workflow

from .helpers import go, shoot

LIVE = 15000  # ms to wait for something the event stream brings
PHONE = {"width": 390, "height": 844}


def seconds_of(text: str) -> float:
    """Seconds in a duration the page shows ("950 ms", "2.5 s", "1 min 03 s", or in Chinese)."""
    text = text.replace("毫秒", "ms").replace("分", "min").replace("秒", "s")
    if m := re.fullmatch(r"(\d+) ms", text):
        return int(m.group(1)) / 1000
    if m := re.fullmatch(r"([\d.]+) s", text):
        return float(m.group(1))
    if m := re.fullmatch(r"(\d+) min (\d+) s", text):
        return int(m.group(1)) * 60 + int(m.group(2))
    raise AssertionError(f"not a duration: {text!r}")


async def test_waiting_jobs_position_wait_overview_and_filters(ui_cluster, open_page):
    cluster = ui_cluster
    await cluster.add_sim(node_seconds=0.05)
    await cluster.wait_online()
    await cluster.post("/api/dispatch", {"paused": True})
    # Twelve jobs wait before the page opens: the overview must list them though it never saw them arrive.
    early = [await cluster.submit(sample_workflow(), client_id="early") for _ in range(12)]

    probe = await open_page(cluster.url + "/#/overview")
    page = probe.page
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on")
    await expect(page.locator(".running-list li[data-prompt-id]")).to_have_count(8)
    await expect(page.locator(".running-list li.muted")).to_have_text("… and 4 more")
    await expect(page.locator("#conn-updated")).to_contain_text("updated")

    # The gateway queue in dispatch order, with positions; re-ordered from the page.
    queue = page.locator("#gateway-queue li[data-prompt-id]")
    await expect(queue).to_have_count(10)
    await expect(page.locator("#queue-panel .count")).to_have_text("12 waiting")
    await expect(queue.first).to_have_attribute("data-prompt-id", early[0]["prompt_id"])
    await expect(queue.first.locator(".position")).to_have_text("#1")
    await queue.nth(5).locator(".move-first").click()
    await expect(queue.first).to_have_attribute("data-prompt-id", early[5]["prompt_id"])
    assert (await cluster.get(f"/api/task/{early[5]['prompt_id']}/status"))["queue_position"] == 1
    await queue.first.locator(".move-last").click()
    await expect(queue.first).to_have_attribute("data-prompt-id", early[0]["prompt_id"])
    assert (await cluster.get(f"/api/task/{early[5]['prompt_id']}/status"))["queue_position"] == 12
    order = await cluster.get("/api/tasks/queue?limit=20")
    assert [j["queue_position"] for j in order["items"]] == list(range(1, 13))
    assert order["items"][-1]["prompt_id"] == early[5]["prompt_id"]

    # Filter on "queued" first, then a job arrives while the page watches: it appears in the list.
    await go(page, "jobs")
    await page.locator('label.chip-toggle[data-state="queued"]').click()
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(12)
    late = await cluster.submit(sample_workflow(), client_id="late")
    late_row = page.locator(f'tr[data-prompt-id="{late["prompt_id"]}"]')
    await expect(late_row).to_have_count(1, timeout=LIVE)
    await expect(page.locator(".view-jobs .count")).to_have_text("13 jobs")

    # "Waited" keeps counting for a job the page saw arrive (the event froze it at a few ms).
    await page.wait_for_timeout(2500)
    wait_cell = late_row.locator("td").nth(8)
    assert seconds_of(await wait_cell.inner_text()) >= 2.0, await wait_cell.inner_text()

    # The detail shows the gateway's own 1-based position (the first job waiting is #1, not #2).
    first = early[0]["prompt_id"]
    status = await cluster.get(f"/api/task/{first}/status")
    assert status["queue_position"] == 1
    await page.click(f'tr[data-prompt-id="{first}"] a')
    detail = page.locator("dialog.job-dialog")
    await expect(detail).to_contain_text("#1 in the gateway queue")
    await expect(detail).not_to_contain_text("#2 in the gateway queue")
    waited = seconds_of(await detail.locator("dd").nth(8).inner_text())
    assert waited >= 2.0, waited
    await detail.get_by_role("button", name="Close").click()

    # Dispatching resumes: finished jobs leave the "queued" list by themselves.
    await cluster.post("/api/dispatch", {"paused": False})
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(0, timeout=LIVE)
    await expect(page.locator(".view-jobs .count")).to_have_text("0 jobs")
    await go(page, "overview")
    await expect(page.locator(".running-list li.empty")).to_have_text("Nothing is waiting or running.", timeout=LIVE)
    assert probe.errors == [], probe.errors


async def test_offline_worker_drops_a_job_retried_elsewhere(ui_cluster, open_page):
    cluster = ui_cluster
    doomed = await cluster.add_sim(node_seconds=0.2, worker={"name": "doomed"})
    await cluster.wait_online()
    probe = await open_page(cluster.url + "/#/workers")
    page = probe.page
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on")
    job = await cluster.submit(slow_workflow(30.0, node_seconds=0.2))
    doomed_row = page.locator("tr[data-worker-id]", has_text="doomed")
    await expect(doomed_row.locator(".cell-running a")).to_have_text(job["prompt_id"][:8], timeout=LIVE)

    # The worker dies mid-job; a second one comes up and the job is retried there.
    await cluster.add_sim(node_seconds=0.2, worker={"name": "rescuer"})
    await doomed.stop()
    rescuer_row = page.locator("tr[data-worker-id]", has_text="rescuer")
    await expect(rescuer_row.locator(".cell-running a")).to_have_text(job["prompt_id"][:8], timeout=LIVE)
    await expect(doomed_row.locator(".badge")).to_have_text("offline", timeout=LIVE)
    await expect(doomed_row.locator(".cell-running")).to_have_text("idle")
    await go(page, "overview")
    tile = page.locator("a.tile", has_text="doomed")
    await expect(tile.locator(".bar")).to_be_hidden()

    # The job's timeline (kept in the store) tells the story with times.
    await page.goto(cluster.url + f"/#/jobs?job={job['prompt_id']}")
    steps = page.locator("dialog.job-dialog ol.timeline li")
    await expect(steps.first).to_contain_text("queued")
    await expect(steps).to_contain_text(["queued", "sent to doomed", "started on doomed", "worker doomed lost",
                                         "retried · sent to rescuer", "started on rescuer"], timeout=LIVE)
    await cluster.post("/api/interrupt", {"prompt_id": job["prompt_id"]})
    await expect(steps.last).to_contain_text("failed: Interrupted", timeout=LIVE)
    stored = await cluster.gateway.store.job_events(job["prompt_id"])
    assert [s["kind"] for s in stored][:4] == ["queued", "sent", "started", "lost"], stored
    assert all(s["at"] >= stored[0]["at"] for s in stored)
    probe.allow_http_error("/ws")
    assert probe.errors == [], probe.errors


async def test_rejected_workflow_is_not_a_failed_job(ui_cluster, open_page):
    cluster = ui_cluster
    await cluster.add_sim()
    await cluster.wait_online()
    bad = sample_workflow()
    bad["1"]["inputs"]["width"] = "wide"  # the worker's validation refuses it
    status, answer = await cluster.request("POST", "/api/prompt", json={"prompt": bad})
    assert status == 400, answer
    await cluster.gateway.jobs.flush()
    stats = await cluster.get("/api/stats")
    assert stats["jobs_by_state"]["failed"] == 0, stats
    assert (await cluster.get("/api/tasks"))["total"] == 0

    probe = await open_page(cluster.url + "/#/overview")
    page = probe.page
    await expect(page.locator('[data-card="jobs_failed"] .card-value')).to_have_text("0")
    await go(page, "jobs")
    await expect(page.locator(".view-jobs .count")).to_have_text("0 jobs")
    assert probe.errors == [], probe.errors


async def test_worker_form_refuses_bad_urls_and_asks_after_a_failed_test(ui_cluster, open_page):
    cluster = ui_cluster
    probe = await open_page(cluster.url + "/#/workers")
    page = probe.page
    probe.allow_http_error("/api/workers")
    await page.click("#add-worker")
    dialog = page.locator("dialog.worker-dialog")
    await dialog.get_by_label("URL", exact=True).fill("not a url")
    await dialog.get_by_role("button", name="Add worker").click()
    await expect(dialog.locator('[data-field="url"] .inline-error')).to_contain_text("without spaces")
    assert cluster.gateway.registry.all() == []

    # An unreachable address: the test fails, and saving right after asks first.
    await dialog.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/")
    await dialog.get_by_role("button", name="Test connection").click()
    await expect(dialog.locator('.test-report[data-ok="false"]')).to_be_visible(timeout=LIVE)
    await dialog.get_by_role("button", name="Add worker").click()
    confirm = page.locator("dialog.confirm")
    await expect(confirm).to_contain_text("test of http://127.0.0.1:9/ failed")
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_visible()
    assert cluster.gateway.registry.all() == []
    await dialog.get_by_role("button", name="Add worker").click()
    await page.locator("dialog.confirm").get_by_role("button", name="Save anyway").click()
    await expect(dialog).to_have_count(0)
    assert [w.url for w in cluster.gateway.registry.all()] == ["http://127.0.0.1:9"] or \
        [w.url for w in cluster.gateway.registry.all()] == ["http://127.0.0.1:9/"]
    assert probe.errors == [], probe.errors


async def test_search_by_id_prefix_from_every_page(ui_cluster, open_page):
    cluster = ui_cluster
    await cluster.add_sim()
    await cluster.wait_online()
    jobs = [await cluster.submit(sample_workflow(), priority=1) for _ in range(3)]
    for job in jobs:
        await cluster.wait_job(job["prompt_id"])
    probe = await open_page(cluster.url + "/#/settings")
    page = probe.page
    target = jobs[1]
    search = page.locator("#job-search-input")
    await search.fill(target["prompt_id"][:6])
    await search.press("Enter")
    detail = page.locator("dialog.job-dialog")
    await expect(detail).to_contain_text(target["prompt_id"])
    await detail.get_by_role("button", name="Close").click()

    # By the gateway's own job id, from another page.
    await go(page, "workers")
    await search.fill(target["gateway_job_id"][:8].upper())
    await search.press("Enter")
    await expect(page.locator("dialog.job-dialog")).to_contain_text(target["prompt_id"])
    await page.locator("dialog.job-dialog").get_by_role("button", name="Close").click()

    # Nothing matches: said next to the box; bad characters: the gateway's 400, in plain words.
    await search.fill("ffffffffff")
    await search.press("Enter")
    await expect(page.locator("#job-search + .inline-error")).to_contain_text("No job starts with")
    probe.allow_http_error("/api/tasks")
    await search.fill("50%")
    await search.press("Enter")
    await expect(page.locator("#job-search + .inline-error")).to_contain_text("query parameter 'q'")

    # The jobs page has the same filter, and a summary of each workflow (node types, outputs).
    await go(page, "jobs")
    await page.fill("#filter-q", target["prompt_id"][:5])
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(1)
    await expect(page.locator(".jobs-table tbody tr .cell-workflow")).to_have_text(
        "EmptyImage, ImageBlur, ImageInvert, SaveImage · outputs: 1")
    cluster.gateway.jobs.recent.clear()  # the summary of jobs read back from the store (not in memory)
    listed = (await cluster.get("/api/tasks"))["items"]
    assert {(tuple(j["class_types"]), j["nodes"], j["outputs"]) for j in listed} == {
        (("EmptyImage", "ImageBlur", "ImageInvert", "SaveImage"), 4, 1)}
    assert probe.errors == [], probe.errors


async def test_phone_width_every_page_fits(ui_cluster, open_page):
    cluster = ui_cluster
    await cluster.add_sim(worker={"name": "a-rather-long-worker-name-for-a-phone"})
    await cluster.wait_online()
    for _ in range(3):
        await cluster.wait_job((await cluster.submit(sample_workflow(), client_id="phone-client"))["prompt_id"])
    probe = await open_page(cluster.url + "/#/overview", viewport=PHONE)
    page = probe.page
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on")
    for view in ("overview", "workers", "jobs", "submit", "settings"):
        await go(page, view)
        await page.wait_for_timeout(300)
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], (view, width)
        if view in ("overview", "jobs", "workers"):
            await shoot(page, f"{view}-phone")
        if view == "submit":
            submit = page.locator("#submit-job")
            await submit.scroll_into_view_if_needed()
            box = await submit.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        if view == "jobs":  # rows are cards: the actions are reachable without sideways scrolling
            await expect(page.locator(".jobs-table thead")).to_be_hidden()
            await expect(page.locator(".jobs-table tbody tr")).to_have_count(3)
        if view == "workers":
            await expect(page.locator(".workers-table thead")).to_be_hidden()
            button = page.locator("tr[data-worker-id] .cell-actions button").last
            box = await button.bounding_box()
            assert box and box["x"] + box["width"] <= PHONE["width"], box
    assert probe.errors == [], probe.errors


async def test_chinese_durations_errors_and_node_types(ui_cluster, open_page):
    cluster = ui_cluster
    await cluster.add_sim(node_seconds=0.2)
    await cluster.wait_online()
    probe = await open_page(cluster.url + "/#/jobs", lang="zh")
    page = probe.page
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on")
    job = await cluster.submit(slow_workflow(20.0, node_seconds=0.2))
    row = page.locator(f'tr[data-prompt-id="{job["prompt_id"]}"]')
    await expect(row.locator(".badge")).to_have_text("运行中", timeout=LIVE)
    await expect(row.locator("td").nth(8)).to_have_text(re.compile(r"^\d+(\.\d)? (毫秒|秒)$"))
    # The detail names the running node by its type, not by its id alone.
    await page.click(f'tr[data-prompt-id="{job["prompt_id"]}"] a')
    detail = page.locator("dialog.job-dialog")
    await expect(detail.locator(".detail-top .muted.small")).to_contain_text(
        re.compile(r"(EmptyImage|ImagePadForOutpaint)（节点 \d+）"), timeout=LIVE)
    await expect(detail.locator("ol.timeline li")).to_contain_text(["已排队", "已发送到 sim1", "在 sim1 上开始"])
    await shoot(page, "job-detail-zh")
    await detail.get_by_role("button", name="关闭").click()
    await cluster.post("/api/interrupt", {"prompt_id": job["prompt_id"]})
    await expect(row.locator(".badge")).to_have_text("失败", timeout=LIVE)
    await expect(row.locator("td").nth(9)).to_have_text(re.compile(r"(秒|—)$"))

    # A server error is named in Chinese by its type, the gateway's message kept on its own line.
    probe.allow_http_error("/api/tasks")
    await page.fill("#filter-q", "50%")
    error = page.locator("#filter-q + .inline-error")
    await expect(error).to_contain_text("请检查输入： 请求有误")
    await expect(error).to_contain_text("原始信息：query parameter 'q'")
    lines = (await error.inner_text()).split("\n")
    assert len(lines) == 2, lines
    assert probe.errors == [], probe.errors


async def test_bulk_actions_priority_cancel_clear_and_resubmit(ui_cluster, open_page):
    cluster = ui_cluster
    await cluster.add_sim()
    await cluster.wait_online()
    await cluster.post("/api/dispatch", {"paused": True})
    jobs = [(await cluster.submit(sample_workflow(), client_id="bulk"))["prompt_id"] for _ in range(5)]
    probe = await open_page(cluster.url + "/#/jobs")
    page = probe.page
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(5)
    bar = page.locator(".bulk-bar")
    await expect(bar).to_be_hidden()

    def box(prompt_id):
        return page.locator(f'tr[data-prompt-id="{prompt_id}"] input.select-job')

    # Two jobs get priority 5.
    await box(jobs[0]).check()
    await box(jobs[1]).check()
    await expect(bar.locator(".bulk-count")).to_have_text("2 selected")
    await page.fill("#bulk-priority-value", "5")
    await page.click("#bulk-priority")
    await expect(bar.locator(".bulk-note")).to_have_text("2 of 2 done.")
    for prompt_id in jobs[:2]:
        assert (await cluster.get(f"/api/task/{prompt_id}/status"))["priority"] == 5
    assert (await cluster.get(f"/api/task/{jobs[2]}/status"))["priority"] == 0

    # One is cancelled, after a confirmation (declining it changes nothing).
    await box(jobs[2]).check()
    await page.click("#bulk-cancel")
    await page.locator("dialog.confirm").get_by_role("button", name="Cancel", exact=True).first.click()
    assert (await cluster.get(f"/api/task/{jobs[2]}/status"))["state"] == "queued"
    await page.click("#bulk-cancel")
    await page.locator("dialog.confirm").get_by_role("button", name="Cancel selected").click()
    await expect(page.locator(f'tr[data-prompt-id="{jobs[2]}"] .badge')).to_have_text("failed", timeout=LIVE)
    assert (await cluster.get(f"/api/task/{jobs[2]}/status"))["error"]["type"] == "cancelled"

    # Clear the gateway queue: the other four are cancelled.
    await page.click("#clear-queue")
    confirm = page.locator("dialog.confirm")
    await expect(confirm).to_contain_text("all 4 jobs")
    await confirm.get_by_role("button", name="Clear the gateway queue").click()
    await expect(page.locator('.jobs-table .badge[data-state="failed"]')).to_have_count(5, timeout=LIVE)

    # Two failed jobs are submitted again as new jobs with the same workflow, client and priority.
    await cluster.post("/api/dispatch", {"paused": False})
    await page.locator("#select-all").check()
    await expect(bar.locator(".bulk-count")).to_have_text("5 selected")
    await page.locator("#select-all").uncheck()
    await expect(bar).to_be_hidden()
    await box(jobs[0]).check()
    await box(jobs[3]).check()
    await page.click("#bulk-retry")
    await page.locator("dialog.confirm").get_by_role("button", name="Resubmit selected").click()
    await expect(bar.locator(".bulk-note")).to_have_text("2 of 2 done.")
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(7, timeout=LIVE)
    listed = (await cluster.get("/api/tasks?limit=10"))["items"]
    fresh = [j for j in listed if j["prompt_id"] not in jobs]
    assert len(fresh) == 2 and {j["priority"] for j in fresh} == {5, 0} and {j["client_id"] for j in fresh} == {"bulk"}
    for job in fresh:
        assert (await cluster.wait_job(job["prompt_id"]))["status"] == "done"
    assert probe.errors == [], probe.errors


async def test_resubmit_route_rejects_bad_input_and_active_jobs(ui_cluster):
    cluster = ui_cluster
    await cluster.add_sim()
    await cluster.wait_online()
    await cluster.post("/api/dispatch", {"paused": True})
    waiting = await cluster.submit(sample_workflow())
    for body in ({}, {"prompt_ids": []}, {"prompt_ids": "x"}, {"prompt_ids": [1]}, {"prompt_ids": ["a"] * 101}):
        status, answer = await cluster.request("POST", "/api/tasks/resubmit", json=body)
        assert status == 400 and answer["error"]["field"] == "prompt_ids", (body, status, answer)
    answer = await cluster.post("/api/tasks/resubmit", {"prompt_ids": [waiting["prompt_id"], "nope"]})
    assert answer["submitted"] == []
    assert [e["error"]["type"] for e in answer["errors"]] == ["conflict", "not_found"]


async def test_worker_statistics_and_charts(ui_cluster, open_page):
    from .helpers import bulk_insert, history_rows

    cluster = ui_cluster
    first = await cluster.add_sim(worker={"name": "stats-a"})
    second = await cluster.add_sim(worker={"name": "stats-b"})
    await cluster.wait_online()
    await bulk_insert(cluster.gateway.store, history_rows([first.worker_id, second.worker_id], start_seq=500000))
    expected = {w["id"]: w for w in (await cluster.get("/api/stats/workers"))["workers"]}
    assert expected[first.worker_id]["done"] > 0 and expected[first.worker_id]["busy_percent"] > 0
    probe = await open_page(cluster.url + "/#/workers")
    page = probe.page
    rows = page.locator("#worker-stats tbody tr")
    await expect(rows).to_have_count(2)
    for worker_id, stats in expected.items():
        cells = page.locator(f'#worker-stats tr[data-stats-worker-id="{worker_id}"] td')
        await expect(cells.nth(1)).to_have_text(f"{stats['done']:,}")
        await expect(cells.nth(2)).to_have_text(f"{stats['failed']:,}")
        await expect(cells.nth(4)).to_contain_text(" %")
        await expect(cells.nth(6)).to_have_text(re.compile(r"^[\d.]+ (ms|s)$|min"))  # online for
        await expect(cells.nth(8).locator("svg rect")).to_have_count(12)
    await go(page, "overview")
    await expect(page.locator("#chart-wait svg path.line")).to_have_count(1)
    await expect(page.locator("#chart-queue svg circle")).not_to_have_count(0)
    await expect(page.locator("#chart-queue svg")).to_have_attribute("aria-label", "Gateway queue length (last hour)")
    await page.select_option("#lang-select", "zh")
    await go(page, "workers")
    await expect(page.locator("#h-worker-stats")).to_have_text("统计（最近一小时）")
    await expect(page.locator(f'#worker-stats tr[data-stats-worker-id="{first.worker_id}"] td').nth(5)).to_contain_text("秒")
    await shoot(page, "workers-zh")
    await go(page, "overview")
    await expect(page.locator("#chart-wait svg path.line")).to_have_count(1)
    await shoot(page, "overview-zh")
    assert probe.errors == [], probe.errors
