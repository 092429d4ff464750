"""Webhooks: signed, never redirected, never to link-local addresses, and kept in a durable outbox that
survives a kill -9 (real gateway process, a real simulator and a real receiving server)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import aiohttp
from aiohttp import web

from tests.conftest import register_online
from tests.fake_comfy import sample_workflow
from tests.harness import free_port


class Receiver:
    """An HTTP server that records what reaches it: /hook answers 200, /redirect answers 302 to /internal."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hits: list[tuple[str, dict, bytes]] = []

    async def _record(self, request):
        self.hits.append((request.path, dict(request.headers), await request.read()))
        if request.path == "/redirect":
            raise web.HTTPFound(self.url + "/internal")
        return web.Response(text="ok")

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._record)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def wait(self, path: str, timeout: float = 20.0) -> tuple[str, dict, bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for hit in self.hits:
                if hit[0] == path:
                    return hit
            await asyncio.sleep(0.05)
        raise AssertionError(f"nothing reached {path}: {[h[0] for h in self.hits]}")


async def _submit(gw, webhook: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(gw.url + "/prompt", json={"prompt": sample_workflow(), "webhook": webhook}) as answer:
            return answer.status, await answer.json()


async def test_signed_deliveries_and_redirects_never_followed(start_gateway, fake_comfy_factory):
    receiver = await Receiver().start()
    try:
        gw = await start_gateway({"GATEWAY_WEBHOOK_SECRET": "hook-secret"})
        await register_online(gw, await fake_comfy_factory())
        status, job = await _submit(gw, receiver.url + "/hook")
        assert status == 200, job
        _, headers, body = await receiver.wait("/hook")
        timestamp = headers["X-Gateway-Timestamp"]
        expected = hmac.new(b"hook-secret", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["X-Gateway-Signature"] == f"sha256={expected}"
        assert abs(int(timestamp) - time.time()) < 120
        status, job = await _submit(gw, receiver.url + "/redirect")
        await receiver.wait("/redirect")
        await asyncio.sleep(6)  # past the first retry's delay: a followed or retried redirect would show
        paths = [hit[0] for hit in receiver.hits]
        assert paths.count("/redirect") == 1 and "/internal" not in paths, paths
        assert "redirect, never followed" in gw.log_text
    finally:
        await receiver.stop()


async def test_link_local_and_metadata_targets_are_refused(start_gateway, fake_comfy_factory):
    gw = await start_gateway()
    await register_online(gw, await fake_comfy_factory())
    for url in ("http://169.254.169.254/latest/meta-data", "http://[fe80::1]/hook", "http://[::ffff:169.254.1.1]/",
                "http://exa mple.com/", "http://127.0.0.1:notaport/"):
        status, body = await _submit(gw, url)
        assert status == 400 and body["error"]["field"] == "webhook", (url, body)
    status, _ = await _submit(gw, "http://localhost:9/hook")  # LAN and loopback stay allowed (n8n)
    assert status == 200


async def test_the_outbox_survives_a_kill_and_delivers_after_the_restart(start_gateway, fake_comfy_factory):
    receiver = Receiver()  # not listening yet: the first attempt fails
    gw = await start_gateway()
    await register_online(gw, await fake_comfy_factory())
    status, job = await _submit(gw, receiver.url + "/late")
    assert status == 200
    deadline = time.monotonic() + 20
    while "webhook for %s failed" % job["prompt_id"] not in gw.log_text:
        assert time.monotonic() < deadline, gw.log_text[-2000:]
        await asyncio.sleep(0.1)
    await gw.kill()
    await receiver.start()
    try:
        again = await start_gateway()  # same data folder: the notification is still in the outbox
        _, _, body = await receiver.wait("/late", timeout=30)
        assert job["prompt_id"].encode() in body
        assert again.data_dir == gw.data_dir
    finally:
        await receiver.stop()
