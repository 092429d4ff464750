"""The tray under Xvfb with pystray's X backend: the icon docks, and every menu action does its job."""

from __future__ import annotations

import dataclasses
import gc
import importlib
import sys
import threading
import time

import pytest

from gateway.desktop import tray as tray_module
from gateway.desktop.runner import run_with_tray
from tests.desktop.helpers import SimThread, http, port_open, wait_for
from tests.fake_comfy import sample_workflow
from tests.harness import test_settings as gateway_settings


def test_state_and_tooltip_from_the_summary():
    summary = {"workers_total": 2, "workers_online": 1, "jobs_queued": 3, "jobs_running": 1, "paused": False}
    assert tray_module.tray_state(summary) == "running"
    assert tray_module.tray_state({**summary, "paused": True}) == "paused"
    assert tray_module.tray_state({**summary, "workers_online": 0}) == "offline"
    text = tray_module.tooltip(summary)
    assert "1/2 workers online" in text and "3 queued" in text and "1 running" in text and len(text) < 128
    assert tray_module.tooltip({**summary, "paused": True}).endswith("(paused)")
    icons = tray_module.load_icons()
    assert set(icons) == {"running", "paused", "offline"} and icons["running"].size == (64, 64)


def _item(app, text):
    for item in app.icon.menu.items:
        if item.text == text:
            return item
    raise AssertionError(f"no menu item {text!r} in {[i.text for i in app.icon.menu.items]}")


@pytest.fixture
def x_tray(xvfb, monkeypatch):
    """DISPLAY and pystray's X backend, with a fake system tray owning the selection."""
    from tests.desktop.systray import FakeSystemTray
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    for name in [m for m in sys.modules if m == "pystray" or m.startswith("pystray.")]:
        monkeypatch.delitem(sys.modules, name)  # pystray chose its backend when first imported
    importlib.import_module("pystray")
    systray = FakeSystemTray(xvfb)
    yield systray
    systray.close()


@pytest.mark.timeout(90)
def test_tray_menu_drives_the_gateway(tmp_path, x_tray):
    sim = SimThread().start()
    settings = dataclasses.replace(gateway_settings(tmp_path / "data"), tray=True, open_browser=True)
    opened, folders, seen, errors, copied = [], [], {}, [], []

    def drive(app) -> None:  # runs on pystray's setup thread while the tray loop owns the main thread
        try:
            seen["app"], seen["thread"] = app, threading.current_thread()
            window = x_tray.wait_docked()
            assert window, "the tray icon never asked the system tray to dock it"
            assert opened == [app.url], "first start opens the admin page"
            status, worker = http("POST", app.url + "api/workers", {"url": sim.url, "name": "sim1"})
            assert status in (200, 201), worker
            wait_for(lambda: app.state == "running", 15, "the running icon once a worker is online")
            wait_for(lambda: "1/1 workers online" in x_tray.window_name(window), 5, "the tooltip on X")

            _item(app, "Open admin page")(app.icon)
            assert opened == [app.url, app.url]
            _item(app, "Copy admin link")(app.icon)
            assert copied == [app.url], "on loopback without a token the link is the plain address"
            _item(app, "Open ComfyUI editor")(app.icon)
            assert opened[-1] == app.url + "comfy/"
            status, _ = http("GET", opened[-1])
            assert status == 200  # the editor, from the worker, through the gateway
            _item(app, "Open data folder")(app.icon)
            assert folders == [settings.data_path]

            _item(app, "Pause dispatching")(app.icon)
            assert app.runner.call(lambda gw: gw.dispatcher.paused) is True
            assert app.state == "paused" and app.icon.icon is app.icons["paused"]
            status, answer = http("POST", app.url + "api/prompt", {"prompt": sample_workflow()})
            assert status == 200, answer
            prompt_id = answer["prompt_id"]
            time.sleep(0.8)
            assert http("GET", app.url + f"api/task/{prompt_id}/status")[1]["status"] == "queued"
            wait_for(lambda: "1 queued" in app.icon.title, 5, "the queued job in the tooltip")

            _item(app, "Resume dispatching")(app.icon)
            assert app.runner.call(lambda gw: gw.dispatcher.paused) is False
            wait_for(lambda: http("GET", app.url + f"api/task/{prompt_id}/status")[1]["status"] == "done", 15,
                     "the job to finish after resuming")
            seen["port"] = app.runner.port
        except BaseException as exc:  # reported on the main thread after the tray loop ends
            errors.append(exc)
        finally:
            _item(app, "Quit")(app.icon)

    try:
        code = run_with_tray(settings, opener=opened.append, folder_opener=folders.append, on_ready=drive,
                             refresh_seconds=0.2, copier=copied.append)
    finally:
        sim.close()
    if errors:
        raise errors[0]
    assert code == 0
    app = seen["app"]
    assert seen["thread"] is not threading.main_thread()
    assert not app.runner.alive, "Quit stops the gateway thread"
    assert app.runner.stopped_cleanly
    assert not port_open(seen["port"]), "Quit closes the port"
    seen.clear()
    del app
    gc.collect()  # pystray's X icon closes its display connection when collected: before Xvfb goes away


@pytest.mark.timeout(60)
def test_tray_falls_back_to_headless_without_a_display(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    settings = dataclasses.replace(gateway_settings(tmp_path / "data"), tray=True, open_browser=True)
    import gateway.desktop.runner as desktop

    started = {}
    real_wait = desktop._wait_headless

    def stop_soon(runner, settings, opener):
        started["port"] = runner.port
        threading.Timer(0.3, runner.request_stop).start()
        return real_wait(runner, settings, opener)

    monkeypatch.setattr(desktop, "_wait_headless", stop_soon)
    monkeypatch.setattr(desktop, "_on_signals", lambda callback: None)
    opened = []
    monkeypatch.setattr(desktop.webbrowser, "open", opened.append)
    with caplog.at_level("INFO"):
        assert run_with_tray(settings, opener=None) == 0
    assert "no display found" in caplog.text and "running headless" in caplog.text
    assert started["port"] and not port_open(started["port"])
    assert opened == [], "no browser on a machine without a display (it would be a text browser)"


@pytest.mark.timeout(60)
def test_copy_admin_link_carries_the_token_and_the_link_signs_a_browser_in(tmp_path):
    from gateway.desktop.runner import GatewayRunner
    settings = gateway_settings(tmp_path / "data", GATEWAY_ADMIN_TOKEN="tray-admin-token")
    runner = GatewayRunner(settings)
    runner.start()
    try:
        copied, opened = [], []
        app = tray_module.TrayApp(runner, runner.url, settings.data_path, opened.append, lambda path: None,
                                  copier=copied.append)
        app.copy_admin_link()
        app.open_admin()
        link = f"http://127.0.0.1:{runner.port}/?token=tray-admin-token"
        assert copied == [link] and opened == [link]
        # The link is what a browser opens: the token goes into an HttpOnly, SameSite=Strict cookie.
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(link)
            raise AssertionError("the link should redirect")
        except urllib.error.HTTPError as answer:
            assert answer.code == 303 and answer.headers["Location"] == "/"
            cookie = answer.headers["Set-Cookie"]
        assert "tray-admin-token" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        runner.request_stop()
        runner.thread.join(10)
