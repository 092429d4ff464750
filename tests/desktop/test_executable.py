"""Build the one-file executable and run it like a user would: headless against two simulators, SIGTERM, restart.

Slow (PyInstaller), but part of the suite. Prints the executable's size and its launch-to-healthy time.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.desktop.helpers import SimThread, free_port, http, require, wait_for
from tests.fake_comfy import sample_workflow

ROOT = Path(__file__).resolve().parents[2]
MAX_SIZE_MB = 40


@pytest.fixture(scope="module")
def executable(tmp_path_factory):
    """The executable, built once for this module into a temporary folder."""
    require(importlib.util.find_spec("PyInstaller") is not None,
            "PyInstaller is not installed (pip install -r requirements-dev.txt)")
    sys.path.insert(0, str(ROOT))
    import build_exe
    out = tmp_path_factory.mktemp("exe")
    started = time.monotonic()
    path = build_exe.build(out / "dist", out / "build", quiet=True)
    return path, time.monotonic() - started


def clean_env(home: Path, **extra: str) -> dict:
    """The environment of a user's session: no gateway settings, no display, a private home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "MYSQL_", "REDIS_", "PYSTRAY_")) and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "xdg"), GATEWAY_HEALTH_INTERVAL="0.2",
               GATEWAY_OFFLINE_AFTER="2", WORKER_REQUEST_TIMEOUT="5", **extra)
    return env


class Launch:
    """One run of the executable, with its log kept in a file."""

    def __init__(self, exe: Path, args: list[str], env: dict, cwd: Path, log: Path):
        self.log = log
        self.started = time.monotonic()
        self.process = subprocess.Popen([str(exe), *args], env=env, cwd=cwd, stdout=log.open("ab"),
                                        stderr=subprocess.STDOUT)

    def wait_healthy(self, url: str, timeout: float = 30.0) -> float:
        """Seconds from launch until /healthz answers ok."""
        def healthy():
            assert self.process.poll() is None, f"the executable exited early:\n{self.log.read_text()}"
            try:
                return http("GET", url + "healthz", timeout=1)[1]["status"] == "ok"
            except (OSError, TypeError, KeyError):
                return False
        wait_for(healthy, timeout, "a healthy /healthz")
        return time.monotonic() - self.started

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"no exit {timeout} s after SIGTERM:\n{self.log.read_text()}")


def job_state(url: str, prompt_id: str) -> str:
    return http("GET", url + f"api/task/{prompt_id}/status")[1]["status"]


def submit(url: str) -> str:
    status, answer = http("POST", url + "api/prompt", {"prompt": sample_workflow()})
    assert status == 200, answer
    return answer["prompt_id"]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGTERM and the browser stub are POSIX")
def test_executable_serves_stops_on_sigterm_and_keeps_its_queue(executable, tmp_path, capsys):
    exe, build_seconds = executable
    size_mb = exe.stat().st_size / 1024 / 1024
    home, log = tmp_path / "home", tmp_path / "gateway-exe.log"
    home.mkdir()
    data_dir = home / "xdg" / "comfyui-gateway"  # the per-user folder ($XDG_DATA_HOME/comfyui-gateway)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    sims = [SimThread().start(), SimThread().start()]
    launches: list[Launch] = []
    try:
        # 1. first start: headless, data in the per-user folder by default (no --data-dir)
        first = Launch(exe, ["--no-tray", "--port", str(port)], clean_env(home), tmp_path, log)
        launches.append(first)
        healthy_first = first.wait_healthy(url)
        assert (data_dir / "gateway.sqlite3").is_file() and (data_dir / "logs" / "gateway.log").is_file()
        assert not (exe.parent / "data").exists()
        assert (data_dir / "gateway.yaml.example").is_file(), "the settings template is put beside the data"

        for index, sim in enumerate(sims):
            status, worker = http("POST", url + "api/workers", {"url": sim.url, "name": f"sim{index + 1}"})
            assert status in (200, 201), worker
        wait_for(lambda: http("GET", url + "healthz")[1]["workers_online"] == 2, 15, "two workers online")
        done = [submit(url) for _ in range(2)]
        for prompt_id in done:
            wait_for(lambda: job_state(url, prompt_id) == "done", 20, f"job {prompt_id} done")
        history = http("GET", url + f"api/history/{done[0]}")[1][done[0]]
        assert history["status"]["completed"] and history["outputs"]

        # 2. a second launch (a double-click while it runs) opens the running one's page and exits 0
        opened = tmp_path / "opened.txt"
        browser = tmp_path / "browser.sh"
        browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
        browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
        second = subprocess.run([str(exe), "--tray", "--port", str(free_port())], cwd=tmp_path, timeout=60,
                                env=clean_env(home, DISPLAY=":99", BROWSER=str(browser)), capture_output=True)
        assert second.returncode == 0, second.stdout.decode() + second.stderr.decode()
        wait_for(lambda: opened.is_file() and opened.read_text().strip(), 10, "the browser stub to be called")
        assert opened.read_text().split() == [url]

        # 3. pause, queue three jobs, SIGTERM: exit code 0
        assert http("POST", url + "api/dispatch", {"paused": True}) == (200, {"paused": True})
        queued = [submit(url) for _ in range(3)]
        assert all(job_state(url, p) == "queued" for p in queued)
        assert first.terminate() == 0, log.read_text()
        for sim in sims:
            sim.stop()  # workers gone while the gateway is down: the jobs must wait, not vanish

        # 4. restart (explicit --data-dir, same folder): the queue is intact, then runs when workers return
        again = Launch(exe, ["--no-tray", "--port", str(port), "--data-dir", str(data_dir)], clean_env(home),
                       tmp_path, log)
        launches.append(again)
        healthy_again = again.wait_healthy(url)
        listed = http("GET", url + "api/tasks?state=queued&limit=50")[1]["items"]
        assert {item["prompt_id"] for item in listed} >= set(queued), listed
        assert http("GET", url + "api/dispatch") == (200, {"paused": True}), "the pause outlives a restart"
        assert http("POST", url + "api/dispatch", {"paused": False}) == (200, {"paused": False})
        for sim in sims:
            sim.start(port=sim.sim.port)
        for prompt_id in queued:
            wait_for(lambda: job_state(url, prompt_id) == "done", 30, f"queued job {prompt_id} done after restart")
        assert again.terminate() == 0, log.read_text()
    finally:
        for launch in launches:
            if launch.process.poll() is None:
                launch.process.kill()
        for sim in sims:
            sim.close()
    with capsys.disabled():
        print(f"\n[desktop] executable {exe.name}: {size_mb:.1f} MB (built in {build_seconds:.0f} s); "
              f"launch to healthy /healthz: {healthy_first:.2f} s first start, {healthy_again:.2f} s restart")
    assert size_mb < MAX_SIZE_MB


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the bundled X tray backend is Linux's")
def test_executable_tray_docks_opens_the_page_and_stops_on_sigterm(executable, tmp_path, xvfb):
    from tests.desktop.systray import FakeSystemTray
    exe, _ = executable
    home, log = tmp_path / "home", tmp_path / "gateway-exe.log"
    home.mkdir()
    opened, browser = tmp_path / "opened.txt", tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    systray = FakeSystemTray(xvfb)
    # a double-click: no arguments besides the port; the tray and the browser are the executable's defaults
    launch = Launch(exe, ["--port", str(port)], clean_env(home, DISPLAY=xvfb, BROWSER=str(browser)), tmp_path, log)
    try:
        launch.wait_healthy(url)
        window = systray.wait_docked(10)
        assert window, f"the executable's tray icon did not dock:\n{log.read_text()}"
        wait_for(lambda: "workers online" in systray.window_name(window), 10, "the tooltip")
        wait_for(lambda: opened.is_file() and opened.read_text().strip(), 10, "the admin page to open")
        assert opened.read_text().split() == [url]
        assert launch.terminate() == 0, log.read_text()
        assert "stopped" in log.read_text()
    finally:
        if launch.process.poll() is None:
            launch.process.kill()
        systray.close()
