"""python -m gateway from source: Ctrl+C stops gracefully, and a second gateway on the same data folder refuses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.desktop.helpers import free_port, http, wait_for

ROOT = Path(__file__).resolve().parents[2]


def gateway_process(data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "DISPLAY"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, "-m", "gateway", "--no-tray", "--port", str(port), "--data-dir",
                             str(data_dir), *extra], cwd=data_dir.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals")
def test_ctrl_c_stops_gracefully_and_a_second_instance_refuses(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    first = gateway_process(data_dir, port)
    try:
        wait_for(lambda: first.poll() is None and _healthy(port), 20, "the gateway to answer /healthz")
        second = gateway_process(data_dir, free_port())
        output = second.communicate(timeout=30)[0].decode()
        assert second.returncode == 1, output
        assert "another gateway already runs with the data folder" in output
        first.send_signal(signal.SIGINT)
        output = first.communicate(timeout=30)[0].decode()
        assert first.returncode == 0, output
        assert "stopped" in output and not (data_dir / "instance.json").exists()
    finally:
        if first.poll() is None:
            first.kill()


def _healthy(port: int) -> bool:
    try:
        return http("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)[1]["status"] == "ok"
    except (OSError, TypeError, KeyError):
        return False
