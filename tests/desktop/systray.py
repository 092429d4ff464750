"""A minimal X system tray manager (the freedesktop System Tray protocol) for the tray test.

It owns the _NET_SYSTEM_TRAY_S0 selection, like a desktop panel does, and records the windows that ask to
be docked; their WM_NAME is the icon's tooltip in pystray's X backend.
"""

from __future__ import annotations

import threading
import time

import Xlib.display
import Xlib.X

REQUEST_DOCK = 0


class FakeSystemTray:
    """Owns the tray selection on `display` and collects dock requests on a background thread."""

    def __init__(self, display: str):
        self.display = Xlib.display.Display(display)
        screen = self.display.screen()
        self.window = screen.root.create_window(0, 0, 1, 1, 0, screen.root_depth)
        self.selection = self.display.intern_atom(f"_NET_SYSTEM_TRAY_S{self.display.get_default_screen()}")
        self.opcode = self.display.intern_atom("_NET_SYSTEM_TRAY_OPCODE")
        self.window.set_selection_owner(self.selection, Xlib.X.CurrentTime)
        self.display.flush()
        self.docked: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-systray", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            while self.display.pending_events():
                event = self.display.next_event()
                if event.type == Xlib.X.ClientMessage and event.client_type == self.opcode:
                    data = event.data[1]
                    if data[1] == REQUEST_DOCK:
                        self.docked.append(data[2])
            time.sleep(0.02)

    def wait_docked(self, timeout: float = 5.0) -> int | None:
        """The id of the first window that asked to be docked."""
        deadline = time.monotonic() + timeout
        while not self.docked and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.docked[0] if self.docked else None

    def window_name(self, window_id: int) -> str:
        """WM_NAME of a docked window (pystray's tooltip on X), read through a fresh connection."""
        display = Xlib.display.Display(self.display.get_display_name())
        try:
            return display.create_resource_object("window", window_id).get_wm_name() or ""
        finally:
            display.close()

    def close(self) -> None:
        """Stop listening and release the selection."""
        self._stop.set()
        self._thread.join(2)
        self.display.close()
