"""The webhook outbox: notifications stored first, then delivered with retries that survive a restart.

Each notification is a row in the store (``webhook_outbox``) before any attempt, so a gateway that
stops (even with kill -9) delivers it after its restart. Delivery never follows a redirect (a 3xx is
a failure that is not retried), refuses link-local addresses (169.254.0.0/16 and fe80::/10, where
cloud metadata services answer) after name resolution, so a DNS name cannot lead there either, and
signs the body with HMAC-SHA256 when ``webhook_secret`` is set. LAN and localhost targets stay
allowed: n8n often runs there.

Only a started outbox delivers (``start()``/``stop()``); every instance may add notifications.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any, Callable

from tornado.httpclient import HTTPRequest
from tornado.netutil import DefaultLoopResolver, Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from ..background import BackgroundLoop
from ..security.addresses import forbidden_address

logger = logging.getLogger(__name__)

TIMEOUT = 10.0
RETRY_DELAYS = (5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)  # after each failed try; then give up
BATCH = 20
IDLE_RECHECK = 60.0  # seconds between looks at the store when nothing is due (another instance may add)


class ForbiddenTarget(OSError):
    """The webhook's host resolves only to link-local / metadata addresses."""


class SafeResolver(Resolver):
    """Resolves like the event loop does, minus link-local addresses."""

    def initialize(self) -> None:
        self._inner = DefaultLoopResolver()

    async def resolve(self, host: str, port: int, family: Any = 0) -> list:
        addresses = await self._inner.resolve(host, port, family)
        allowed = [(fam, addr) for fam, addr in addresses if not forbidden_address(str(addr[0]))]
        if not allowed:
            raise ForbiddenTarget(f"{host} is a link-local address; webhooks may not reach it")
        return allowed


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Gateway-Signature value: sha256=HMAC-SHA256(secret, "<timestamp>." + body) in hex."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookOutbox(BackgroundLoop):
    """Adds notifications to the store and (when started) delivers the due ones."""

    def __init__(self, store, settings: Callable[[], Any]):
        self.store = store
        self._settings = settings
        self._wake = asyncio.Event()
        self._client: SimpleAsyncHTTPClient | None = None

    async def add(self, prompt_id: str, url: str, payload: dict) -> None:
        """Store a notification for delivery (durable before this returns)."""
        await self.store.add_webhook_delivery({"prompt_id": prompt_id, "url": url, "payload": payload,
                                               "created_at": time.time()})
        self._wake.set()

    async def _loop(self) -> None:
        self._client = SimpleAsyncHTTPClient(force_instance=True, resolver=SafeResolver(), max_clients=BATCH)
        try:
            while True:
                self._wake.clear()
                try:
                    due = await self.store.due_webhook_deliveries(time.time(), BATCH)
                    await asyncio.gather(*(self._deliver(row) for row in due))
                    if len(due) == BATCH:
                        continue
                    next_at = await self.store.next_webhook_due_at()
                except Exception:  # the store is away for a moment: try again later
                    logger.exception("webhook outbox: reading the store failed")
                    next_at = None
                wait = IDLE_RECHECK if next_at is None else max(0.0, min(IDLE_RECHECK, next_at - time.time()))
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._client.close()

    async def _deliver(self, row: dict) -> None:
        body = json.dumps(row["payload"]).encode()
        headers = {"Content-Type": "application/json", "X-Gateway-Event": "job_finished",
                   "X-Gateway-Delivery": str(row["id"])}
        secret = self._settings().webhook_secret
        if secret:
            timestamp = str(int(time.time()))
            headers["X-Gateway-Timestamp"] = timestamp
            headers["X-Gateway-Signature"] = sign(secret, timestamp, body)
        request = HTTPRequest(row["url"], method="POST", body=body, headers=headers, follow_redirects=False,
                              connect_timeout=TIMEOUT, request_timeout=TIMEOUT)
        retry = True
        try:
            response = await self._client.fetch(request, raise_error=False)
            if 200 <= response.code < 300:
                await self.store.delete_webhook_delivery(row["id"])
                logger.info("webhook for %s delivered (%d)", row["prompt_id"], response.code)
                return
            reason = f"status {response.code}"
            if 300 <= response.code < 400:
                reason, retry = f"it answered {response.code} (a redirect, never followed)", False
            elif response.code == 599:
                reason = str(response.error)
                retry = not isinstance(response.error, ForbiddenTarget)
        except ForbiddenTarget as exc:
            reason, retry = str(exc), False
        except Exception as exc:  # any transport problem: retried later
            reason = f"{type(exc).__name__}: {exc}"
        await self._failed(row, reason, retry)

    async def _failed(self, row: dict, reason: str, retry: bool) -> None:
        attempts = row["attempts"] + 1
        if not retry or attempts > len(RETRY_DELAYS):
            logger.warning("webhook for %s to %s abandoned after %d attempt(s): %s", row["prompt_id"],
                           row["url"], attempts, reason)
            await self.store.delete_webhook_delivery(row["id"])
            return
        delay = RETRY_DELAYS[attempts - 1]
        logger.warning("webhook for %s failed (%s), attempt %d; next in %.0f s", row["prompt_id"], reason,
                       attempts, delay)
        await self.store.retry_webhook_delivery(row["id"], attempts, time.time() + delay, reason)
