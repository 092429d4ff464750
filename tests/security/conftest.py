"""The gateway as its own process, with the settings a test asks for, and a raw HTTP helper."""

from __future__ import annotations

import asyncio

import pytest

from tests.harness import GatewayProcess


@pytest.fixture
async def start_gateway(tmp_path):
    """start_gateway(env, host=...) -> a started GatewayProcess (python -m gateway); all stopped at the end."""
    started: list[GatewayProcess] = []

    async def start(env: dict | None = None, host: str = "127.0.0.1", name: str = "gw") -> GatewayProcess:
        proc = GatewayProcess(tmp_path / name, env={"GATEWAY_DATABASE": "sqlite", **(env or {})}, host=host)
        started.append(proc)
        return await proc.start()

    yield start
    for proc in started:
        if proc.proc.returncode is None:
            await proc.terminate()


async def raw_exchange(port: int, head: bytes, body: bytes = b"", read_timeout: float = 10.0) -> bytes:
    """Send a request head (and body) on a new connection; the bytes answered until the server closes
    or stops sending for a moment."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        answer = b""
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), read_timeout)
            except asyncio.TimeoutError:
                break
            if not data:
                break
            answer += data
            if b"\r\n\r\n" in answer:
                head_part, _, rest = answer.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
        return answer
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    """The status code of a raw answer."""
    return int(answer.split(b" ", 2)[1])
