"""The admin page in real headless Chromium against a gateway with two simulators.

One operator session: add a worker that needs auth through the form, see it online, submit the sample
workflow and watch it finish with its thumbnail, change the priority of a queued job and cancel
another, interrupt a running one, save settings, switch language; screenshots of every view go to
docs/img/. The page must log no console errors.
"""

from __future__ import annotations

from playwright.async_api import expect

from tests.fake_comfy import sample_workflow, slow_workflow

from .helpers import bulk_insert, go, history_rows, shoot

LIVE = 15000  # ms to wait for something the event stream brings


async def test_operator_session(ui_cluster, open_page):
    cluster = ui_cluster
    sim1 = await cluster.add_sim(node_seconds=0.15, worker={"name": "studio-gpu-1"})
    secured = await cluster.add_sim(register=False, auth=("user", "pass"), node_seconds=0.1,
                                    device_name="cuda:0 NVIDIA GeForce RTX 3090 : cudaMallocAsync")
    await cluster.wait_online()
    # An hour of finished jobs so the overview charts have something to show.
    await bulk_insert(cluster.gateway.store, history_rows([sim1.worker_id], start_seq=100000))

    probe = await open_page(cluster.url + "/#/workers")
    page = probe.page
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on")
    await expect(page.locator("tr[data-worker-id]")).to_have_count(1)

    # ----- add a worker behind Basic auth through the form --------------------------------------------
    await page.click("#add-worker")
    dialog = page.locator("dialog.worker-dialog")
    await dialog.get_by_label("URL", exact=True).fill(secured.url)
    await dialog.get_by_label("Name", exact=True).fill("studio-gpu-2")
    await dialog.get_by_label("Auth username").fill("user")
    await dialog.get_by_label("Auth password").fill("wrong")
    await dialog.get_by_role("button", name="Test connection").click()
    failed = dialog.locator('.test-report[data-ok="false"]')
    await expect(failed).to_be_visible()
    await expect(failed).to_contain_text("401")
    await dialog.get_by_label("Auth password").fill("pass")
    await dialog.get_by_role("button", name="Test connection").click()
    report = dialog.locator('.test-report[data-ok="true"]')
    await expect(report).to_be_visible()
    await expect(report).to_contain_text("RTX 3090")
    await dialog.get_by_role("button", name="Add worker").click()
    await expect(dialog).to_have_count(0)
    row = page.locator("tr[data-worker-id]", has_text="studio-gpu-2")
    await expect(row.locator(".badge")).to_have_text("online", timeout=LIVE)
    await expect(row).to_contain_text("auth")
    stored = [w for w in cluster.gateway.registry.all() if w.name == "studio-gpu-2"][0]
    assert (stored.auth_username, stored.auth_password) == ("user", "pass")
    assert not await page.evaluate(  # the password is never shown
        "() => /\\bpass\\b/.test(document.body.innerText)"
        " || [...document.querySelectorAll('input')].some((i) => i.value === 'pass')")

    # Editing shows the password only as "set"; a bad value is reported next to its field.
    await row.get_by_role("button", name="Edit").click()
    dialog = page.locator("dialog.worker-dialog")
    password = dialog.get_by_label("Auth password")
    await expect(password).to_have_value("")
    await expect(password).to_have_attribute("placeholder", "set — type to replace")
    probe.allow_http_error(f"/api/workers/{stored.id}")
    await dialog.get_by_label("URL", exact=True).fill("ftp://nowhere")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator('[data-field="url"] .inline-error')).to_contain_text("http or https")
    await dialog.get_by_role("button", name="Cancel").click()

    # Test connection from the table reports what the worker answered.
    await row.get_by_role("button", name="Test").click()
    await expect(page.locator('.report-row .test-report[data-ok="true"]')).to_contain_text("ComfyUI")
    await cluster.wait_online()
    await page.locator(".report-row").get_by_role("button", name="Close").click()

    # ----- submit the sample workflow and follow it to its thumbnail ----------------------------------
    await go(page, "submit")
    await page.click("#load-sample")
    await expect(page.locator("#workflow-summary")).to_contain_text("EmptyImage")
    await page.click("#submit-job")
    run = page.locator("article.run").first
    await expect(run.locator(".bar")).to_have_attribute("aria-valuenow", "100", timeout=LIVE)
    await expect(run.locator(".badge")).to_have_text("done")
    await page.wait_for_function(
        "() => { const img = document.querySelector('article.run .thumb img');"
        " return img && img.complete && img.naturalWidth > 0; }", timeout=LIVE)

    # A broken workflow is explained next to the editor, before anything is sent.
    await page.fill("#workflow", '{"1": {"inputs": {}}')
    await page.click("#submit-job")
    await expect(page.locator("#workflow + .inline-error")).to_contain_text("not valid JSON")
    await page.click("#load-sample")
    await shoot(page, "submit")

    # ----- queued jobs: change a priority, cancel one; interrupt a running one ------------------------
    await go(page, "overview")
    await page.click("#dispatch-toggle")
    await expect(page.locator("#dispatch-state")).to_have_attribute("data-state", "paused")
    keep = await cluster.submit(sample_workflow(), client_id="ui-test")
    drop = await cluster.submit(sample_workflow(), client_id="ui-test")
    await go(page, "jobs")
    drop_row = page.locator(f'tr[data-prompt-id="{drop["prompt_id"]}"]')
    await expect(drop_row.locator(".badge")).to_have_text("queued", timeout=LIVE)

    await page.click(f'tr[data-prompt-id="{keep["prompt_id"]}"] a')
    detail = page.locator("dialog.job-dialog")
    await detail.get_by_label("New priority").fill("7")
    await detail.get_by_role("button", name="Set").click()
    await expect(page.locator(f'tr[data-prompt-id="{keep["prompt_id"]}"] td').nth(4)).to_have_text("7")
    status = await cluster.get(f"/api/task/{keep['prompt_id']}/status")
    assert status["priority"] == 7
    await detail.get_by_role("button", name="Close").click()

    await drop_row.get_by_role("button", name="Cancel").click()
    await page.locator("dialog.confirm").get_by_role("button", name="Cancel").last.click()
    await expect(drop_row.locator(".badge")).to_have_text("failed", timeout=LIVE)
    await expect(drop_row).to_contain_text("Cancelled")
    assert (await cluster.get(f"/api/task/{drop['prompt_id']}/status"))["error"]["type"] == "cancelled"

    await go(page, "overview")
    await page.click("#dispatch-toggle")
    await expect(page.locator("#dispatch-state")).to_have_attribute("data-state", "on")
    await cluster.wait_job(keep["prompt_id"])

    # Two long jobs, one per worker: every view shows live progress while they run.
    slow = await cluster.submit(slow_workflow(8.0, node_seconds=0.15))
    other = await cluster.submit(slow_workflow(6.0, node_seconds=0.1), priority=3)
    await go(page, "jobs")
    slow_row = page.locator(f'tr[data-prompt-id="{slow["prompt_id"]}"]')
    await expect(slow_row.locator(".badge")).to_have_text("running", timeout=LIVE)
    await expect(page.locator(f'tr[data-prompt-id="{keep["prompt_id"]}"] .badge')).to_have_text("done")
    await page.wait_for_function(
        f"() => Number(document.querySelector('tr[data-prompt-id=\"{slow['prompt_id']}\"] .bar')"
        ".getAttribute('aria-valuenow')) >= 20", timeout=LIVE)
    await shoot(page, "jobs")
    await go(page, "overview")
    await expect(page.locator(".running-list .bar")).to_have_count(2)
    await expect(page.locator("#chart-per-minute svg rect.done").first).to_be_visible()
    await shoot(page, "overview")
    await go(page, "workers")
    await expect(page.locator(".workers-table .cell-running .bar")).to_have_count(2)
    await shoot(page, "workers")

    await go(page, "jobs")
    await slow_row.get_by_role("button", name="Interrupt").click()
    await page.locator("dialog.confirm").get_by_role("button", name="Interrupt").click()
    await expect(slow_row.locator(".badge")).to_have_text("failed", timeout=LIVE)
    await expect(slow_row).to_contain_text("Interrupted")
    await cluster.post("/api/interrupt", {"prompt_id": other["prompt_id"]})

    # Filters go to the API: only failed jobs of this client.
    await page.locator('label.chip-toggle[data-state="failed"]').click()
    await page.fill("#filter-client", "ui-test")
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(1)
    await expect(page.locator(".view-jobs .count")).to_have_text("1 jobs")

    # ----- overview counts -----------------------------------------------------------------------------
    await go(page, "overview")
    await expect(page.locator('[data-card="workers_online"] .card-value')).to_have_text("2 / 2")
    await expect(page.locator('[data-card="jobs_running"] .card-value')).to_have_text("0", timeout=LIVE)

    # ----- settings: saved through the API; a bad value is named next to its field ----------------------
    await go(page, "settings")
    await page.fill("#setting-worker_request_timeout", "45")
    await page.fill("#setting-worker_auth_username", "render")
    await page.fill("#setting-worker_auth_password", "s3cret")
    await page.click("#save-settings")
    await expect(page.locator(".settings-form [role=status]")).to_have_text("Saved.")
    settings = cluster.gateway.settings
    assert (settings.worker_request_timeout, settings.worker_auth_username, settings.worker_auth_password) == \
        (45.0, "render", "s3cret")
    await expect(page.locator(".secret-chip")).to_have_text("set")
    await expect(page.locator("#setting-worker_auth_password")).to_have_value("")
    await page.fill("#setting-max_retries", "-1")
    await page.click("#save-settings")
    await expect(page.locator('[data-field="max_retries"] .inline-error')).to_be_visible()
    await page.fill("#setting-max_retries", "1")
    await shoot(page, "settings")

    # ----- language: switch to Chinese, remembered after a reload --------------------------------------
    await page.select_option("#lang-select", "zh")
    await expect(page.locator('.tabs a[data-view="jobs"]')).to_have_text("任务")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await page.reload()
    await expect(page.locator('.tabs a[data-view="workers"]')).to_have_text("Worker")
    await expect(page.locator('.tabs a[data-view="overview"]')).to_have_text("概览")
    await go(page, "workers")
    await expect(page.locator("tr[data-worker-id] .badge").first).to_have_text("在线")

    assert probe.errors == [], probe.errors


async def test_chinese_by_default_and_live_stream_reconnects(ui_cluster, open_page):
    cluster = ui_cluster
    worker = await cluster.post("/api/workers", {"url": "http://127.0.0.1:9/", "name": "far-away"})
    probe = await open_page(cluster.url + "/", lang="zh")
    page = probe.page
    await expect(page.locator('.tabs a[data-view="submit"]')).to_have_text("提交")
    await expect(page.locator('[data-card="workers_online"] .card-label')).to_have_text("在线 Worker")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on")

    # The gateway drops the page's event socket: the page says so, reconnects by itself and stays live.
    for listener in list(cluster.gateway.events._admin_listeners):
        listener.__self__.close()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "off")
    await expect(page.locator("#conn-text")).to_have_text("正在重连…")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "on", timeout=LIVE)
    status, _ = await cluster.request("PATCH", f"/api/workers/{worker['id']}", json={"name": "renamed-live"})
    assert status == 200
    await expect(page.locator(".tile-name")).to_have_text("renamed-live")
    assert probe.errors == [], probe.errors
