"""Shared helpers for the benchmarks: start simulators and the gateway as subprocesses, stats, tables.

Every process is started by the bench, on loopback, with its own temporary directory, and is stopped
(SIGTERM, then SIGKILL) when the bench ends, also on Ctrl+C or an error.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

import aiohttp

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # so the benches can import tests.fake_comfy.workflows
HOST = "127.0.0.1"

_procs: list[subprocess.Popen] = []


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def spawn(args: Sequence[str], log_path: Path, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Start a child process whose output goes to a log file; it is stopped at exit."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(list(args), cwd=str(cwd), env=_env(env), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    proc.log_path = log_path  # type: ignore[attr-defined]
    _procs.append(proc)
    return proc


def stop_all() -> None:
    """Stop every child started by spawn() (by pid): SIGTERM, wait, then SIGKILL."""
    for proc in _procs:
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for proc in _procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _procs.clear()


atexit.register(stop_all)


def _on_sigterm(signum, frame):  # make `kill` of the bench clean up its children too
    raise SystemExit(1)


signal.signal(signal.SIGTERM, _on_sigterm)


class Sim:
    """A fake ComfyUI in its own process."""

    def __init__(self, workdir: Path, speed: float = 1.0, node_seconds: float = 0.01, models: str | None = None,
                 script: str | None = None, name: str = "sim", extra_args: Sequence[str] = ()):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.speed = speed
        self.data_dir = workdir / f"{name}_{self.port}"
        self.data_dir.mkdir(parents=True)
        launcher = [str(Path(__file__).parent / script)] if script else ["-m", "tests.fake_comfy"]
        args = [PYTHON, *launcher, "--host", HOST, "--port", str(self.port), "--speed", str(speed),
                "--node-seconds", str(node_seconds), "--data-dir", str(self.data_dir), "--log-level", "WARNING"]
        if models:
            args += ["--models", models]
        args += list(extra_args)
        self.proc = spawn(args, workdir / f"{name}_{self.port}.log", workdir)

    @property
    def output_dir(self) -> Path:
        return self.data_dir / "output"


class GatewayProc:
    """The gateway (python -m gateway) in its own process, with a fresh data dir (SQLite).

    root: run the gateway's code from another tree (an older version, for a side-by-side comparison;
    e.g. `git worktree add /tmp/base main`); name keeps two gateways of one bench apart.
    """

    def __init__(self, workdir: Path, env: dict | None = None, root: Path | None = None, name: str = "gateway"):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.data_dir = workdir / f"{name}_data"
        cwd = workdir / f"{name}_cwd"  # empty: no gateway.yaml or .env of the repo is picked up
        cwd.mkdir()
        base = {"GATEWAY_DATABASE": "sqlite"}  # every other setting at its default
        if root is not None:
            base["PYTHONPATH"] = str(root)
        base.update(env or {})
        profile = os.environ.get("BENCH_PROFILE_GATEWAY")  # a file: run the gateway under cProfile
        prefix = [PYTHON, "-m", "cProfile", "-o", profile] if profile else [PYTHON]
        self.proc = spawn([*prefix, "-m", "gateway", "--host", HOST, "--port", str(self.port),
                           "--data-dir", str(self.data_dir), "--no-tray"], workdir / f"{name}.log", cwd, base)

    @property
    def pid(self) -> int:
        return self.proc.pid


def workdir(prefix: str) -> Path:
    """A temporary directory for one bench run (kept only if BENCH_KEEP=1)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("BENCH_KEEP") != "1":
        import shutil
        atexit.register(shutil.rmtree, str(path), True)
    else:
        print(f"(work dir kept: {path})")
    return path


async def wait_http(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until url answers (any status); fail early if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log = Path(proc.log_path).read_text(errors="replace")[-3000:]  # type: ignore[attr-defined]
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered:\n{log}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                await r.read()
                return
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout}s")
        await asyncio.sleep(0.1)


async def register_workers(session: aiohttp.ClientSession, gateway_url: str, sims: Iterable[Sim],
                           timeout: float = 30, **fields) -> dict:
    """Register each simulator as a worker and wait until all are online with their monitors connected.

    Returns {sim port: worker id}.
    """
    ids = {}
    for i, sim in enumerate(sims):
        body = {"url": sim.url, "name": f"w{i + 1}_s{sim.speed:g}", **fields}
        async with session.post(gateway_url + "/api/workers", json=body) as r:
            answer = await r.json()
            if r.status not in (200, 201):
                raise RuntimeError(f"register {sim.url}: {r.status} {answer}")
            ids[sim.port] = answer["id"]
    deadline = time.monotonic() + timeout
    while True:
        async with session.get(gateway_url + "/api/workers") as r:
            workers = await r.json()
        ready = [w for w in workers if w["state"] == "online" and w.get("monitor_connected")
                 and w.get("node_types")]
        if len(ready) >= len(ids):
            return ids
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not online after {timeout}s: {workers}")
        await asyncio.sleep(0.1)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def table(headers: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A plain-text table."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def rerun_line() -> str:
    """The command line that re-runs this bench."""
    return "cd " + shlex.quote(str(REPO)) + " && " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(PYTHON, REPO) if PYTHON.startswith(str(REPO)) else PYTHON,
                                 os.path.relpath(os.path.abspath(sys.argv[0]), REPO), *sys.argv[1:]])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_status_kb(pid: int, field: str) -> int | None:
    """A field (VmRSS, VmHWM, ...) of /proc/<pid>/status in kB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
