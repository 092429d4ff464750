"""The admin page links to the ComfyUI editor (English and Chinese); with an access token saved, the link
signs the editor in first, so the editor opens without asking for the key again."""

from __future__ import annotations

from playwright.async_api import expect

from tests.harness import Cluster


async def test_admin_page_opens_the_editor_signed_in(tmp_path, ui_routes, open_page):
    cluster = Cluster(tmp_path / "gw", GATEWAY_API_KEYS="studio-key")
    await cluster.start()
    try:
        probe = await open_page(cluster.url + "/#/settings")
        probe.allow_http_error("/api/")  # the 401s before the token is entered
        page = probe.page
        link = page.locator("#editor-link")
        await expect(link).to_have_attribute("href", "/comfy/")
        await expect(link).to_contain_text("ComfyUI editor")
        await page.fill("#admin-token", "studio-key")
        await page.click("#token-form button[type=submit]")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "on")

        async with page.context.expect_page() as opened:
            await link.click()
        editor = await opened.value
        await editor.wait_for_url(cluster.url + "/comfy/")
        # Signed in by the link: not the sign-in page but the editor's "no worker online" page (none here).
        await expect(editor.locator("h1")).to_contain_text("No worker is online")
        await editor.close()

        await page.select_option("#lang-select", "zh")
        await expect(link).to_contain_text("ComfyUI 编辑器")
        assert probe.errors == [], probe.errors
    finally:
        await cluster.stop()


async def test_editor_sign_in_page(tmp_path, open_page):
    cluster = Cluster(tmp_path / "gw", GATEWAY_API_KEYS="studio-key")
    await cluster.start()
    try:
        probe = await open_page(cluster.url + "/comfy/")
        probe.allow_http_error("/comfy/login")  # the wrong key
        page = probe.page
        await expect(page.locator("h1")).to_contain_text("ComfyUI editor")
        await page.fill("#key", "wrong")
        await page.click("button[type=submit]")
        await expect(page.locator("#error")).to_be_visible()
        await page.fill("#key", "studio-key")
        await page.click("button[type=submit]")
        await expect(page.locator("h1")).to_contain_text("No worker is online")
        # The page's own answers (401 before signing in, 503 with no worker) are the only errors logged.
        others = [e for e in probe.errors if not e.startswith("console.error: Failed to load resource: the server "
                                                              "responded with a status of 401")
                  and "status of 503" not in e]
        assert others == [], probe.errors
    finally:
        await cluster.stop()
