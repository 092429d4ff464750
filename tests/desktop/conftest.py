"""Fixtures of the desktop tests: a private Xvfb display."""

from __future__ import annotations

import os
import select
import shutil
import subprocess

import pytest

from tests.desktop.helpers import require


@pytest.fixture
def xvfb():
    """Start Xvfb on a free display (it picks the number itself: -displayfd) and yield ':N'."""
    binary = shutil.which("Xvfb")
    require(binary is not None, "Xvfb is not installed (apt-get install xvfb, or ./run.sh test as root)")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen([binary, "-displayfd", str(write_fd), "-screen", "0", "320x240x24", "-nolisten",
                                "tcp", "-noreset"], pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 10)
        number = os.read(read_fd, 32).decode().strip() if ready else ""
        require(number.isdigit(), "Xvfb did not start")
        yield f":{number}"
    finally:
        os.close(read_fd)
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
