"""Fixtures for the admin-page tests: a headless Debian Chromium driven by Playwright, clusters to point it at.

The tests skip with a printed reason when Chromium (/usr/bin/chromium) or the playwright package is
missing; with GATEWAY_TEST_REQUIRE_SERVICES=1 they fail instead, like the store's service tests.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.harness import Cluster

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
REQUIRE_ENV = "GATEWAY_TEST_REQUIRE_SERVICES"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 makes this a failure)", pytrace=False)
    print("SKIP: " + reason)
    pytest.skip(reason)


def _with_ui_support(routes):
    """The gateway's routes plus gateway/handlers/ui_support.py's, until app routing registers them itself."""
    from gateway.handlers.ui_support import ui_support_routes

    def all_routes(gateway):
        table = routes(gateway)
        if any(route[0] == r"/api/ui/speeds" for route in table):
            return table
        return [*ui_support_routes(), *table]
    return all_routes


@pytest.fixture
def ui_routes(monkeypatch):
    """Serve the admin page's support routes in test gateways."""
    import gateway.app
    monkeypatch.setattr(gateway.app, "routes", _with_ui_support(gateway.app.routes))


@pytest.fixture
async def browser():
    """A headless Chromium (Debian's; no browser is downloaded)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is not installed: {exc}")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            await instance.close()


class PageProbe:
    """A page plus what it logged: console errors and uncaught exceptions.

    Chromium logs every HTTP error answer (and refused WebSocket) as a console error; a test that
    provokes one on purpose names its path with allow_http_error() so only that one is let through.
    """

    def __init__(self, page):
        self.page = page
        self._errors: list[tuple[str, str]] = []
        self._allowed: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self._errors.append((f"pageerror: {exc}", "")))

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            self._errors.append((f"console.error: {msg.text}", (msg.location or {}).get("url", "")))

    def allow_http_error(self, path_part: str) -> None:
        """An HTTP error answer from a URL containing path_part is expected (the test provoked it)."""
        self._allowed.append(path_part)

    @property
    def errors(self) -> list[str]:
        """Console errors and page exceptions, less the HTTP errors the test asked for."""
        def expected(text: str, url: str) -> bool:
            if text.startswith("console.error: Failed to load resource"):
                return any(part in url for part in self._allowed)
            if text.startswith("console.error: WebSocket connection to"):
                return any(part in text for part in self._allowed)
            return False
        return [text for text, url in self._errors if not expected(text, url)]


@pytest.fixture
async def open_page(browser):
    """open_page(url, lang="en") -> PageProbe at 1440x900 with the page's language preset."""
    contexts = []

    async def opener(url: str, lang: str = "en", viewport: dict = VIEWPORT) -> PageProbe:
        context = await browser.new_context(viewport=viewport, locale="en-US" if lang == "en" else "zh-CN",
                                            device_scale_factor=1)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(10000)
        probe = PageProbe(page)
        await page.goto(url)
        return probe

    yield opener
    for context in contexts:
        await context.close()


@pytest.fixture
async def ui_cluster(tmp_path, ui_routes):
    """A gateway (with the page's support routes) and no workers yet."""
    cluster = Cluster(tmp_path / "gw")
    await cluster.start()
    yield cluster
    await cluster.stop()
