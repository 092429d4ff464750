"""Bodies are checked from the head, before any byte is read, and streamed within their limits (real
gateway process, raw sockets so that exactly what a hostile client sends is sent)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.handlers.test_comfy_client_flow import png_bytes
from tests.security.conftest import raw_exchange, status_of

MB = 1024 * 1024


def _head(port: int, path: str, length: int | None, extra: str = "", content_type: str = "application/json") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n{framing}{extra}"
            "\r\n").encode()


def _error(answer: bytes) -> dict:
    return json.loads(answer.partition(b"\r\n\r\n")[2])["error"]


async def test_a_huge_body_is_refused_from_its_head_alone(start_gateway):
    gw = await start_gateway({"GATEWAY_API_KEYS": "body-key"})
    # No key: 401 before a single body byte was sent (the server answers the head alone).
    answer = await raw_exchange(gw.port, _head(gw.port, "/api/upload/image", 300 * MB,
                                               content_type="multipart/form-data; boundary=x"))
    assert status_of(answer) == 401 and _error(answer)["type"] == "unauthorized"
    assert b"Connection: close" in answer
    # With the key: 413 in the error shape, still before any body byte.
    key = "Authorization: Bearer body-key\r\n"
    for path, length in (("/api/upload/image", 300 * MB), ("/prompt", 11 * MB), ("/api/workers", 11 * MB)):
        answer = await raw_exchange(gw.port, _head(gw.port, path, length, key,
                                                   "multipart/form-data; boundary=x" if "upload" in path
                                                   else "application/json"))
        assert status_of(answer) == 413, (path, answer[:200])
        error = _error(answer)
        assert error["type"] == "payload_too_large" and error["limit"] in (100 * MB + MB, 10 * MB)


async def test_a_chunked_body_is_cut_off_at_its_limit(start_gateway):
    gw = await start_gateway({"GATEWAY_MAX_JSON_BODY_SIZE": "64KB", "GATEWAY_MAX_UPLOAD_SIZE": "1MB"})
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(_head(gw.port, "/prompt", None))
    chunk = b"8000\r\n" + b" " * 0x8000 + b"\r\n"
    answer = b""
    try:
        for _ in range(64):  # up to 2 MB; the gateway answers after 64 kB
            writer.write(chunk)
            await writer.drain()
            try:
                answer += await asyncio.wait_for(reader.read(65536), 0.05)
            except asyncio.TimeoutError:
                continue
            if answer:
                break
    except ConnectionError:
        pass
    writer.close()
    assert status_of(answer) == 413 and b"payload_too_large" in answer, answer[:300]


async def test_uploads_stream_to_a_file_within_the_limit_and_leave_nothing_behind(start_gateway):
    gw = await start_gateway({"GATEWAY_MAX_UPLOAD_SIZE": "2MB"})
    image = png_bytes((9, 9, 9), size=(64, 64))
    async with aiohttp.ClientSession() as session:
        form = aiohttp.FormData()
        form.add_field("image", image, filename="small.png", content_type="image/png")
        form.add_field("subfolder", "s")
        async with session.post(gw.url + "/upload/image", data=form) as response:
            assert response.status == 200 and (await response.json())["name"] == "small.png"
        big = aiohttp.FormData()
        big.add_field("image", b"\0" * (3 * MB), filename="big.png", content_type="image/png")
        # With Expect: 100-continue the client waits: the 413 comes instead of the go-ahead, no byte is sent.
        async with session.post(gw.url + "/upload/image", data=big, expect100=True) as response:
            assert response.status == 413 and (await response.json())["error"]["type"] == "payload_too_large"
        # The same, streamed without a length: cut off while it arrives, its temporary file removed.
        async def chunks():
            yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"c.png\"\r\n\r\n"
            for _ in range(40):
                yield b"\1" * (128 * 1024)
        try:
            async with session.post(gw.url + "/upload/image", data=chunks(),
                                    headers={"Content-Type": "multipart/form-data; boundary=b"}) as response:
                assert response.status == 413
        except aiohttp.ClientError:
            pass  # the gateway closed the connection while the client was still sending: also a refusal
        async with session.post(gw.url + "/upload/image", data=b"--nope", headers={
                "Content-Type": "multipart/form-data; boundary=b"}) as response:
            assert response.status == 400
    await asyncio.sleep(0.3)
    leftovers = list((gw.data_dir / "uploads").glob("*.part"))
    assert leftovers == [], leftovers
    blobs = [p for p in (gw.data_dir / "uploads").iterdir() if p.is_file()]
    assert len(blobs) == 1 and blobs[0].stat().st_size == len(image)
