"""The Instances panel in Chromium against two gateway processes on one MariaDB: who dispatches, and a
takeover shown live when the dispatcher is killed."""

from __future__ import annotations

from playwright.async_api import expect

from tests.cluster.helpers import LEASE_SECONDS, Nodes
from tests.store.services import require_redis, temporary_mysql_database

from .helpers import screenshot_path


async def test_instances_panel_shows_the_cluster_and_a_takeover(tmp_path, open_page):
    redis_url = require_redis()
    with temporary_mysql_database() as mysql:
        nodes = Nodes(tmp_path, mysql, redis_url)
        try:
            await nodes.start("gw-a", "gw-b")
            await nodes.add_sim("gw-a")
            await nodes.wait_workers_online(("gw-a", "gw-b"), 1)
            probe = await open_page(nodes.url("gw-b") + "/#/overview")
            page = probe.page
            rows = page.locator("#instances-table tbody tr")
            await expect(rows).to_have_count(2)
            leader = page.locator('#instances-table tr[data-leader="true"]')
            await expect(leader).to_contain_text("gw-a")
            await expect(leader).to_contain_text("dispatcher")
            await expect(page.locator("#cluster-mode")).to_contain_text("2 alive")
            await expect(page.locator('#instances-table tr:has-text("gw-b")')).to_contain_text("this page")
            await page.locator("#instances-panel").screenshot(path=screenshot_path("instances"))

            nodes.kill("gw-a")
            wait = (LEASE_SECONDS + 8) * 1000
            await expect(leader).to_contain_text("gw-b", timeout=wait)
            await expect(page.locator("#takeovers li").first).to_contain_text("gw-b took over", timeout=wait)
            await expect(page.locator('#instances-table tr:has-text("gw-a")')).to_have_attribute(
                "data-alive", "false", timeout=wait)
            await page.select_option("#lang-select", "zh")
            await expect(page.locator("#h-instances")).to_have_text("网关实例")
            await expect(leader).to_contain_text("调度者")
            assert probe.errors == []
        finally:
            await nodes.stop()
