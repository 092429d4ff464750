"""Desktop mode: the gateway on a background thread with its own loop, the tray on the main thread."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any, Callable

from ..app import Gateway
from ..config import Settings
from .paths import admin_url, display_available
from .single_instance import InstanceLock, probe_gateway

logger = logging.getLogger(__name__)


class GatewayRunner:
    """Runs one Gateway on an asyncio loop in a background thread; other threads reach it only via call()."""

    def __init__(self, settings: Settings, gateway_factory: Callable[[Settings], Gateway] = Gateway):
        self.settings = settings
        self.gateway_factory = gateway_factory
        self.gateway: Gateway | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None
        self.error: BaseException | None = None
        self.stopped_cleanly = False
        self.thread = threading.Thread(target=self._main, name="gateway", daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    @property
    def alive(self) -> bool:
        """Whether the gateway thread still runs."""
        return self.thread.is_alive()

    @property
    def url(self) -> str:
        """The admin page's URL."""
        return admin_url(self.settings.host, self.port or self.settings.port)

    def start(self, timeout: float = 60.0) -> int:
        """Start the thread and wait until the gateway listens; raises what the start raised."""
        self.thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the gateway did not start within {timeout:.0f} s")
        if self.error is not None:
            self.thread.join(10.0)
            raise self.error
        return self.port

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() or logged; the thread must not die silently
            if not self._ready.is_set():
                self.error = exc
                self._ready.set()
            else:
                logger.exception("the gateway loop failed")

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.gateway = self.gateway_factory(self.settings)
        try:
            self.port = await self.gateway.start()
        except BaseException as exc:
            self.error = exc
            try:  # undo what the start did (background tasks, the store) before reporting
                await self.gateway.stop()
            except Exception:
                logger.debug("cleanup after a failed start failed", exc_info=True)
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.gateway.stop()
        self.stopped_cleanly = True

    def call(self, fn: Callable[[Gateway], Any], timeout: float = 10.0) -> Any:
        """Run fn(gateway) on the gateway's loop (awaiting it when it returns a coroutine) and return its result."""
        async def invoke() -> Any:
            result = fn(self.gateway)
            return await result if asyncio.iscoroutine(result) else result
        if self.loop is None or self.loop.is_closed():
            raise RuntimeError("the gateway is not running")
        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(timeout)

    def request_stop(self) -> None:
        """Ask the gateway to stop gracefully (any thread; returns at once)."""
        loop, stop = self.loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop gracefully and wait for the thread; True when the gateway shut down cleanly."""
        self.request_stop()
        self.thread.join(timeout)
        return self.stopped_cleanly and not self.thread.is_alive()


def open_folder(path: Path) -> None:
    """Show a folder in the platform's file manager."""
    if sys.platform.startswith("win"):
        import os
        os.startfile(str(path))  # noqa: S606 - Windows only
    else:
        subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", str(path)])


def open_page(url: str, opener: Callable[[str], object] | None = None) -> None:
    """Open url in the default browser when there is a display (never a text browser on a server)."""
    if opener is None and not display_available():
        logger.info("admin page: %s", url)
        return
    logger.info("opening the admin page %s", url)
    try:
        (opener or webbrowser.open)(url)
    except Exception:
        logger.exception("cannot open a browser; the admin page is %s", url)


def hand_over(settings: Settings, instance: InstanceLock, opener: Callable[[str], object] | None = None) -> int:
    """Another gateway holds this data folder: open its page (desktop launch) or refuse (headless)."""
    url = instance.running_url(wait=15.0 if settings.tray else 2.0)
    if not settings.tray:
        logger.error("another gateway already runs with the data folder %s%s", settings.data_path,
                     f" at {url}" if url else "")
        return 1
    if url is None:
        logger.error("another gateway holds the data folder %s but does not answer", settings.data_path)
        return 1
    logger.info("comfyui-gateway already runs at %s: opening its admin page", url)
    open_page(url, opener)
    return 0


def _start(runner: GatewayRunner, settings: Settings, opener) -> int | None:
    """Start the runner; on a busy port held by another gateway, open that one's page. None = started."""
    try:
        runner.start()
        return None
    except OSError as exc:
        url = admin_url(settings.host, settings.port)
        if settings.tray and settings.port and probe_gateway(url):
            logger.info("port %d is in use by a running gateway: opening %s", settings.port, url)
            open_page(url, opener)
            return 0
        logger.error("cannot start: %s", exc)
        return 1


def _on_signals(callback: Callable[[], None]) -> None:
    """Call callback on SIGINT/SIGTERM (Ctrl+C, service stop); the handler runs on the main thread."""
    def handler(signum, _frame) -> None:
        logger.info("%s received", signal.Signals(signum).name)
        callback()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass


def _launch(settings: Settings, instance: InstanceLock | None, opener) -> tuple[GatewayRunner, int | None]:
    """Start the gateway thread; once it serves, tell later launches where it is. Exit code on failure."""
    runner = GatewayRunner(settings)
    code = _start(runner, settings, opener)
    if code is None and instance is not None:
        instance.publish(runner.url)
    return runner, code


def run_headless(settings: Settings, instance: InstanceLock | None = None, opener=None) -> int:
    """Run without a tray until SIGINT/SIGTERM, using the same runner as the tray."""
    runner, code = _launch(settings, instance, opener)
    if code is not None:
        return code
    return _wait_headless(runner, settings, opener)


def run_with_tray(settings: Settings, instance: InstanceLock | None = None, *,
                  opener: Callable[[str], object] | None = None, folder_opener: Callable[[Path], object] = open_folder,
                  on_ready: Callable[[Any], object] | None = None, refresh_seconds: float = 3.0,
                  copier: Callable[[str], object] | None = None) -> int:
    """Desktop mode: gateway thread + tray icon on this (main) thread; headless when there is no display."""
    if not display_available():
        logger.warning("no display found (DISPLAY/WAYLAND_DISPLAY unset): running headless without a tray icon")
        return run_headless(settings, instance, opener)
    from .tray import TrayApp
    runner, code = _launch(settings, instance, opener)
    if code is not None:
        return code
    app = TrayApp(runner, runner.url, settings.data_path, lambda url: open_page(url, opener), folder_opener,
                  refresh_seconds, copier)
    try:
        app.build()
    except Exception as exc:  # no tray backend (no X server, no system tray support): keep serving
        logger.warning("cannot show a tray icon (%s): running headless", exc)
        return _wait_headless(runner, settings, opener)
    _on_signals(lambda: app.stop("signal"))
    if settings.open_browser:
        open_page(runner.url, opener)
    app.run(on_ready)
    clean = runner.stop()
    return 0 if clean else 1


def _wait_headless(runner: GatewayRunner, settings: Settings, opener) -> int:
    """Serve until SIGINT/SIGTERM; the main thread only waits (join with a timeout lets signals in)."""
    _on_signals(runner.request_stop)
    if settings.open_browser:
        open_page(runner.url, opener)
    while runner.alive:
        runner.thread.join(0.5)
    return 0 if runner.stopped_cleanly else 1
