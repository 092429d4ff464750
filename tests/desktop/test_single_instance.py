"""One gateway per data folder: the lock, the published URL, and a second launch handing over to the first."""

from __future__ import annotations

import dataclasses

from gateway.desktop.runner import GatewayRunner, hand_over
from gateway.desktop.single_instance import InstanceLock, probe_gateway
from tests.harness import test_settings as gateway_settings


def test_lock_is_exclusive_and_released(tmp_path):
    first, second = InstanceLock(tmp_path), InstanceLock(tmp_path)
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    first.publish("http://127.0.0.1:1234/")
    assert second.published_url() == "http://127.0.0.1:1234/"
    first.release()
    assert second.published_url() is None
    assert second.acquire()
    second.release()


def test_stale_files_do_not_block(tmp_path):
    (tmp_path / "gateway.lock").write_text("")
    (tmp_path / "instance.json").write_text('{"url": "http://127.0.0.1:9/"}')
    lock = InstanceLock(tmp_path)
    assert lock.acquire()  # the OS lock died with its process; leftover files mean nothing
    lock.release()


def test_second_launch_opens_the_running_gateway(tmp_path):
    settings = gateway_settings(tmp_path / "data")
    owner = InstanceLock(settings.data_path)
    assert owner.acquire()
    runner = GatewayRunner(settings)
    runner.start()
    try:
        owner.publish(runner.url)
        assert probe_gateway(runner.url)["status"] == "ok"
        opened = []
        later = InstanceLock(settings.data_path)
        assert not later.acquire()
        assert hand_over(dataclasses.replace(settings, tray=True), later, opener=opened.append) == 0
        assert opened == [runner.url]
        # headless (a server, a service manager): refuse with exit code 1 instead of opening anything
        assert hand_over(dataclasses.replace(settings, tray=False), later, opener=opened.append) == 1
        assert opened == [runner.url]
    finally:
        assert runner.stop()
        owner.release()


def test_probe_ignores_other_servers(tmp_path):
    assert probe_gateway("http://127.0.0.1:9/", timeout=0.2) is None
