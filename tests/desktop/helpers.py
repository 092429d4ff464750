"""Helpers for the desktop tests: skip-or-fail, free ports, HTTP from plain threads, a simulator on its own loop."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import pytest

from tests.fake_comfy import FakeComfy


def require(available: bool, reason: str) -> None:
    """Skip with a printed reason when a tool is missing; fail instead under GATEWAY_TEST_REQUIRE_SERVICES=1."""
    if available:
        return
    if os.environ.get("GATEWAY_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (GATEWAY_TEST_REQUIRE_SERVICES=1)")
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    """(status, parsed JSON) of one blocking request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class SimThread:
    """A FakeComfy on its own event loop thread, for tests whose main thread is busy (tray, subprocesses)."""

    def __init__(self, **kwargs: Any):
        self.sim = FakeComfy(**kwargs)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-comfy", daemon=True)

    @property
    def url(self) -> str:
        """The simulator's base URL."""
        return self.sim.url

    def start(self, port: int = 0) -> "SimThread":
        """Start (or restart on the same port) the simulator."""
        if not self.thread.is_alive():
            self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(port=port), self.loop).result(15)
        return self

    def stop(self) -> None:
        """Stop the simulator (its port closes); start() brings it back."""
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(15)

    def close(self) -> None:
        """Stop the simulator and its loop."""
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.sim.cleanup()
