"""Gateway memory while it receives large bodies (issue 12): peak RSS above idle during a refused 300 MB
body (no API key: 401) and an accepted 90 MB upload, for this tree and optionally an older one.

Each gateway runs in its own process (SQLite, GATEWAY_API_KEYS set, otherwise defaults); a thread of this
process samples its VmRSS every 5 ms while a raw socket client sends the body in 1 MB writes as fast as
the gateway takes it. Target: < 64 MB above idle for both.

Prints figures only (the machine is shared; compare the columns of one run, not runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import aiohttp
from _common import GatewayProc, read_status_kb, rerun_line, stop_all, table, wait_http, workdir

MB = 1024 * 1024
KEY = "bench-body-key"


class Sampler:
    """Peak VmRSS of a pid while the `with` block runs, sampled every 5 ms."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, read_status_kb(self.pid, "VmRSS") or 0)
            time.sleep(0.005)

    def __enter__(self):
        self.peak = read_status_kb(self.pid, "VmRSS") or 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def send_body(port: int, head: bytes, parts, size: int) -> tuple[str, int, float]:
    """Send head + body (an iterable of byte strings) on a blocking socket; (status line, bytes of the body
    sent, seconds). Stops sending when the gateway answers or closes early."""
    started = time.perf_counter()
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        try:
            for part in parts:
                view = memoryview(part)
                while view:
                    try:
                        n = sock.send(view)
                        view, sent = view[n:], sent + n
                    except BlockingIOError:
                        try:
                            data = sock.recv(65536)
                            if data:
                                answer += data
                                raise StopIteration  # answered before the body was sent: refused early
                            raise ConnectionResetError("closed")
                        except BlockingIOError:
                            time.sleep(0.0005)
        except (StopIteration, ConnectionError, BrokenPipeError):
            pass
        sock.setblocking(True)
        sock.settimeout(60)
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    status = answer.split(b"\r\n", 1)[0].decode("latin-1") or "(connection closed)"
    return status, sent, time.perf_counter() - started


def refused_body(port: int, size: int):
    head = (f"POST /api/upload/image HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; "
            f"boundary=b\r\nContent-Length: {size}\r\n\r\n").encode()
    block = b"\0" * MB
    return head, (block for _ in range(size // MB))


def upload_body(port: int, size: int):
    preamble = b'--b\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
    closing = b"\r\n--b--\r\n"
    total = len(preamble) + size + len(closing)
    head = (f"POST /api/upload/image HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {total}\r\n\r\n").encode()
    block = os.urandom(MB)

    def parts():
        yield preamble
        for _ in range(size // MB):
            yield block
        yield closing
    return head, parts()


async def measure(gw: GatewayProc, refused_mb: int, upload_mb: int) -> list[list[str]]:
    rows = []
    loop = asyncio.get_running_loop()
    for what, (head, parts), size in (
            (f"refused {refused_mb} MB body (no key)", refused_body(gw.port, refused_mb * MB), refused_mb * MB),
            (f"accepted {upload_mb} MB upload", upload_body(gw.port, upload_mb * MB), upload_mb * MB)):
        await asyncio.sleep(1.0)
        idle = read_status_kb(gw.pid, "VmRSS") or 0
        with Sampler(gw.pid) as sampler:
            status, sent, seconds = await loop.run_in_executor(None, send_body, gw.port, head, parts, size)
            await asyncio.sleep(0.3)
        rows.append([what, status, f"{sent / MB:.1f}", f"{seconds:.2f}", f"{idle / 1024:.1f}",
                     f"{sampler.peak / 1024:.1f}", f"{(sampler.peak - idle) / 1024:+.1f}"])
    return rows


async def main(args) -> None:
    work = workdir("bench_body_memory_")
    gateways = {"this tree": GatewayProc(work, env={"GATEWAY_API_KEYS": KEY})}
    if args.baseline_root:
        gateways[f"baseline ({args.baseline_root})"] = GatewayProc(work, env={"GATEWAY_API_KEYS": KEY},
                                                                   root=args.baseline_root, name="baseline")
    rows = []
    async with aiohttp.ClientSession() as session:
        for gw in gateways.values():
            await wait_http(session, gw.url + "/healthz", gw.proc)
    for name, gw in gateways.items():
        for row in await measure(gw, args.refused_mb, args.upload_mb):
            rows.append([name] + row)
    print("gateway memory while receiving a body (VmRSS sampled every 5 ms), MB")
    print(table(["gateway", "body", "answer", "MB sent", "s", "idle RSS", "peak RSS", "peak above idle"], rows))
    print("target: < 64 MB above idle")
    print()
    print("re-run:", rerun_line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refused-mb", type=int, default=300, help="size of the refused body (default 300)")
    parser.add_argument("--upload-mb", type=int, default=90, help="size of the accepted upload (default 90)")
    parser.add_argument("--baseline-root", type=Path, default=None,
                        help="also measure a gateway run from this tree (e.g. a worktree of main)")
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        stop_all()
