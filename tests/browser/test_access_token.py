"""A gateway that requires an API key: the page says what is missing and works once the token is entered."""

from __future__ import annotations

from playwright.async_api import expect

from tests.harness import Cluster


async def test_page_asks_for_token_then_works(tmp_path, ui_routes, open_page):
    cluster = Cluster(tmp_path / "gw", GATEWAY_API_KEYS="studio-key")
    await cluster.start()
    try:
        status, _ = await cluster.request("POST", "/api/workers", json={"url": "http://127.0.0.1:9/", "name": "locked"},
                                          headers={"Authorization": "Bearer studio-key"})
        assert status == 201
        probe = await open_page(cluster.url + "/#/workers")
        probe.allow_http_error("/api/")  # the 401s before the token is entered are the point of this test
        page = probe.page
        await expect(page.locator(".view-workers .inline-error")).to_contain_text("token")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "off")

        await page.click('.tabs a[data-view="settings"]')
        await page.fill("#admin-token", "studio-key")
        await page.click("#token-form button[type=submit]")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "on")
        await page.click('.tabs a[data-view="workers"]')
        await expect(page.locator("tr[data-worker-id]")).to_contain_text("locked")
        await expect(page.locator(".view-workers .inline-error")).to_have_count(0)
        assert probe.errors == [], probe.errors
    finally:
        await cluster.stop()
