"""The tray icon (pystray): menu, tooltip and a state icon. It reaches the gateway only through the runner's loop."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw

from .clipboard import copy_text
from .paths import APP_NAME, icons_dir

logger = logging.getLogger(__name__)

STATE_COLOURS = {"running": (46, 160, 67), "paused": (219, 154, 4), "offline": (128, 128, 128)}


def tray_state(summary: dict) -> str:
    """running, paused or offline (no worker online) — the icon shown."""
    if summary.get("paused"):
        return "paused"
    if not summary.get("workers_online"):
        return "offline"
    return "running"


def tooltip(summary: dict) -> str:
    """The hover text: workers online and jobs queued/running (short: Windows cuts at 127 characters)."""
    text = (f"ComfyUI gateway: {summary.get('workers_online', 0)}/{summary.get('workers_total', 0)} workers online, "
            f"{summary.get('jobs_queued', 0)} queued, {summary.get('jobs_running', 0)} running")
    return text + (" (paused)" if summary.get("paused") else "")


def load_icons(folder: Path | None = None) -> dict[str, Image.Image]:
    """The state icons from packaging/icons (bundled as icons/), or plain dots when a file is missing."""
    folder = folder or icons_dir()
    icons = {}
    for state, colour in STATE_COLOURS.items():
        path = folder / f"{state}.png"
        try:
            with Image.open(path) as image:
                icons[state] = image.convert("RGBA")
        except OSError:
            image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
            ImageDraw.Draw(image).ellipse((4, 4, 60, 60), fill=colour + (255,))
            icons[state] = image
    return icons


def on_ui_thread(fn: Callable[[], object]) -> None:
    """Run fn where the tray backend wants UI changes: AppKit's main thread on macOS, right here elsewhere
    (pystray's X backend forwards to its own loop, Windows' shell calls are thread-safe)."""
    if sys.platform == "darwin":
        from PyObjCTools import AppHelper
        AppHelper.callAfter(fn)
    else:
        fn()


class TrayApp:
    """The icon and its menu; every action goes through `runner` (GatewayRunner) to the gateway's loop."""

    def __init__(self, runner, url: str, data_dir: Path, opener: Callable[[str], object],
                 open_folder: Callable[[Path], object], refresh_seconds: float = 3.0,
                 copier: Callable[[str], object] | None = None):
        self.runner = runner
        self.copier = copier or copy_text
        self.url = url
        self.data_dir = data_dir
        self.opener = opener
        self.open_folder = open_folder
        self.refresh_seconds = refresh_seconds
        self.icons = load_icons()
        self.summary: dict = {}
        self.state = "offline"
        self.icon = None
        self._stopping = threading.Event()

    @property
    def paused(self) -> bool:
        """Whether dispatching is paused (as of the last refresh or menu action)."""
        return bool(self.summary.get("paused"))

    def build(self) -> None:
        """Create the pystray icon (raises when no tray backend can start, e.g. no X server)."""
        import pystray  # imported late: picks its backend from the display at import time
        item = pystray.MenuItem
        menu = pystray.Menu(
            item("Open admin page", self.open_admin, default=True),
            item("Copy admin link", self.copy_admin_link),
            item("Open ComfyUI editor", self.open_editor),
            item(lambda _item: "Resume dispatching" if self.paused else "Pause dispatching", self.toggle_pause),
            item("Open data folder", self.open_data_folder),
            pystray.Menu.SEPARATOR,
            item("Quit", self.quit),
        )
        self._read_summary()
        self.state = tray_state(self.summary)
        self.icon = pystray.Icon(APP_NAME, self.icons[self.state], tooltip(self.summary), menu)

    def run(self, on_ready: Callable[["TrayApp"], object] | None = None) -> None:
        """Show the icon and run the tray loop until Quit; call from the main thread (macOS needs it)."""
        def setup(icon) -> None:
            icon.visible = True
            threading.Thread(target=self._refresh_loop, name="tray-refresh", daemon=True).start()
            if on_ready:
                on_ready(self)
        self.icon.run(setup=setup)

    # ----- menu actions (called on the tray's thread) ------------------------------------------------
    def _admin_link(self) -> str:
        try:
            return self.runner.call(lambda gw: gw.admin_link())
        except Exception:  # the loop is busy or stopping: the plain address still helps
            return self.url

    def open_admin(self, icon=None, item=None) -> None:
        """Open the admin page in the default browser (signed in, when the gateway has an admin token)."""
        self.opener(self._admin_link())

    def copy_admin_link(self, icon=None, item=None) -> None:
        """Copy the admin page's address, with the admin token when there is one, for another browser."""
        self.copier(self._admin_link())

    def open_editor(self, icon=None, item=None) -> None:
        """Open the ComfyUI editor of the whole cluster (/comfy/) in the default browser."""
        self.opener(self.url.rstrip("/") + "/comfy/")

    def toggle_pause(self, icon=None, item=None) -> None:
        """Pause dispatching (jobs are still accepted and queued) or resume it."""
        self.runner.call(lambda gw: gw.dispatcher.resume() if gw.dispatcher.paused else gw.dispatcher.pause())
        self.refresh()

    def open_data_folder(self, icon=None, item=None) -> None:
        """Show the data folder (database, uploads, logs, gateway.yaml) in the file manager."""
        self.open_folder(self.data_dir)

    def quit(self, icon=None, item=None) -> None:
        """Stop the gateway gracefully and end the tray loop."""
        self.stop("Quit chosen in the tray menu")

    def stop(self, reason: str) -> None:
        """Stop the gateway gracefully and end the tray loop (Quit, SIGINT/SIGTERM)."""
        logger.info("stopping: %s", reason)
        self._stopping.set()
        self.runner.request_stop()
        self.icon.stop()

    # ----- state --------------------------------------------------------------------------------------
    def _read_summary(self) -> None:
        try:
            self.summary = self.runner.call(lambda gw: gw.summary())
        except Exception as exc:  # the loop is busy or stopping: keep the last summary
            logger.debug("tray refresh skipped: %s", exc)

    def refresh(self) -> None:
        """Update icon, tooltip and menu labels from the gateway's summary."""
        was_paused = self.paused
        self._read_summary()
        if self._stopping.is_set():
            return
        state, title = tray_state(self.summary), tooltip(self.summary)
        if state != self.state:
            self.state = state
            on_ui_thread(lambda: setattr(self.icon, "icon", self.icons[state]))
        if title != self.icon.title:
            on_ui_thread(lambda: setattr(self.icon, "title", title))
        if self.paused != was_paused:
            on_ui_thread(self.icon.update_menu)

    def _refresh_loop(self) -> None:
        while not self._stopping.wait(self.refresh_seconds):
            if not self.runner.alive:
                logger.error("the gateway stopped: closing the tray icon")
                self._stopping.set()
                on_ui_thread(self.icon.stop)
                return
            try:
                self.refresh()
            except Exception:
                logger.exception("tray refresh failed")
