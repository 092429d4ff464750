"""A raw HTTP helper for the security tests (the gateway process fixture, start_gateway, is in tests/)."""

from __future__ import annotations

import asyncio



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
