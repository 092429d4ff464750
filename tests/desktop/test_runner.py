"""GatewayRunner: the gateway on its own loop thread, reached from other threads only through call()."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.desktop.runner import GatewayRunner, _start
from tests.desktop.helpers import port_open
from tests.harness import test_settings as gateway_settings


def test_runner_starts_serves_and_stops(tmp_path):
    runner = GatewayRunner(gateway_settings(tmp_path / "data"))
    port = runner.start()
    assert port and port_open(port) and runner.alive
    assert runner.call(lambda gw: gw.summary())["workers_total"] == 0
    runner.call(lambda gw: gw.dispatcher.pause())
    assert runner.call(lambda gw: gw.dispatcher.paused) is True
    assert runner.call(lambda gw: gw.store.count_jobs_by_state()) is not None  # coroutines are awaited
    assert runner.stop() is True
    assert not runner.alive and not port_open(port)


def test_busy_port_raises_from_start(tmp_path):
    first = GatewayRunner(gateway_settings(tmp_path / "a"))
    port = first.start()
    try:
        second = GatewayRunner(dataclasses.replace(gateway_settings(tmp_path / "b"), port=port))
        with pytest.raises(OSError):
            second.start()
        assert not second.alive
    finally:
        first.stop()


def test_busy_port_of_another_gateway_opens_its_page_in_desktop_mode(tmp_path):
    first = GatewayRunner(gateway_settings(tmp_path / "a"))
    port = first.start()
    try:
        opened = []
        settings = dataclasses.replace(gateway_settings(tmp_path / "b"), port=port, tray=True)
        assert _start(GatewayRunner(settings), settings, opened.append) == 0
        assert opened == [f"http://127.0.0.1:{port}/"]
        headless = dataclasses.replace(settings, tray=False)
        assert _start(GatewayRunner(headless), headless, opened.append) == 1
    finally:
        first.stop()
