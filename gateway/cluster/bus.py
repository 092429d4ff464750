"""Redis pub/sub between the gateway instances of a cluster: ordered publishing, one subscriber.

A message is a JSON header line (``"i"`` names the sending instance) followed by an optional binary
payload (a WebSocket frame, a preview image), so previews cross without base64. Publishing never
waits: messages go into a bounded buffer that one task sends in order, many per round trip (a
pipeline), so the order in which an instance publishes is the order every other instance receives.
Redis may vanish at any time: publishing then drops messages, the subscriber reconnects with back-off,
and ``up`` tells the rest of the gateway to read the store instead (see cluster/sync.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..store.redis_cache import mask_url

logger = logging.getLogger(__name__)

CHANNELS = ("jobs", "relay", "workers", "control")
ERRORS = (RedisError, OSError, asyncio.TimeoutError)
MAX_BUFFERED_BYTES = 64 * 1024 * 1024  # beyond this, new messages are dropped until Redis catches up
BATCH = 256  # messages per pipeline round trip
BACKOFF_START, BACKOFF_MAX = 0.25, 5.0

Handler = Callable[[dict, bytes], None]


def encode(header: dict, payload: bytes = b"") -> bytes:
    """One bus message: the JSON header, a newline, the payload."""
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def decode(data: bytes) -> tuple[dict, bytes] | None:
    """(header, payload) of a bus message, or None when it is not one."""
    head, sep, payload = data.partition(b"\n")
    if not sep:
        return None
    try:
        header = json.loads(head)
    except ValueError:
        return None
    return (header, payload) if isinstance(header, dict) else None


class ClusterBus:
    """Publishes and receives the cluster's messages on Redis channels under the key prefix."""

    def __init__(self, url: str, prefix: str, instance_id: str):
        self.url = url
        self.safe_url = mask_url(url)
        self.prefix = prefix
        self.instance_id = instance_id
        self.up = False
        self._handlers: dict[str, Handler] = {}
        self._on_up: Callable[[], None] | None = None
        self._client = None
        self._outbox: deque[tuple[bytes, bytes]] = deque()
        self._outbox_bytes = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.dropped = 0

    async def start(self, handlers: dict[str, Handler], on_up: Callable[[], None]) -> None:
        """Connect and subscribe in the background; handlers get (header, payload) of others' messages."""
        self._handlers = handlers
        self._on_up = on_up
        self._client = aioredis.from_url(self.url, decode_responses=False, socket_connect_timeout=2.0,
                                         socket_timeout=5.0, health_check_interval=5)
        self._tasks = [asyncio.ensure_future(self._subscribe_loop()), asyncio.ensure_future(self._publish_loop())]

    async def stop(self) -> None:
        """Send what is buffered (briefly), then disconnect."""
        if self._outbox and self.up:
            for _ in range(20):
                if not self._outbox:
                    break
                await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._client is not None:
            try:
                await self._client.aclose()
            except ERRORS:
                pass
            self._client = None
        self.up = False

    # ----- publishing -------------------------------------------------------------------------------
    def publish(self, channel: str, header: dict, payload: bytes = b"") -> None:
        """Queue a message for the other instances (dropped while Redis is down or too far behind)."""
        if not self.up:
            return
        data = encode({**header, "i": self.instance_id}, payload)
        if self._outbox_bytes + len(data) > MAX_BUFFERED_BYTES:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("cluster bus: Redis is too slow; %d message(s) dropped", self.dropped)
            return
        self._outbox.append(((self.prefix + channel).encode(), data))
        self._outbox_bytes += len(data)
        self._wake.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(BATCH, len(self._outbox)))]
                self._outbox_bytes -= sum(len(data) for _, data in batch)
                try:
                    pipe = self._client.pipeline(transaction=False)
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
                except ERRORS as exc:
                    # The subscriber notices too and the others fall back to the store; what was not
                    # sent is gone (pub/sub has no replay), the store has the state.
                    logger.debug("cluster bus: publish failed: %s", exc)
                    self._mark_down(exc)

    def _mark_down(self, exc: BaseException) -> None:
        if self.up:
            logger.warning("cluster bus: Redis %s unreachable (%s: %s); instances read the store instead",
                           self.safe_url, type(exc).__name__, exc)
        self.up = False
        self._outbox.clear()
        self._outbox_bytes = 0

    # ----- receiving --------------------------------------------------------------------------------
    async def _subscribe_loop(self) -> None:
        delay = BACKOFF_START
        channels = [(self.prefix + name).encode() for name in CHANNELS]
        names = {channel: name for channel, name in zip(channels, CHANNELS)}
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                if not self.up:
                    logger.info("cluster bus: subscribed on Redis %s", self.safe_url)
                self.up = True
                delay = BACKOFF_START
                if self._on_up:
                    self._on_up()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(names.get(message["channel"]), message["data"])
                    elif not self.up:  # a publish failed while the subscription lived on: try again
                        await self._client.ping()
                        self.up = True
                        if self._on_up:
                            self._on_up()
            except asyncio.CancelledError:
                raise
            except ERRORS as exc:
                self._mark_down(exc)
            finally:
                try:
                    await pubsub.aclose()
                except ERRORS:
                    pass
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)

    def _dispatch(self, channel: str | None, data: bytes) -> None:
        decoded = decode(data) if isinstance(data, bytes) else None
        handler = self._handlers.get(channel) if channel else None
        if decoded is None or handler is None:
            return
        header, payload = decoded
        if header.get("i") == self.instance_id:
            return  # our own message
        try:
            handler(header, payload)
        except Exception:  # one bad message must not end the subscription
            logger.exception("cluster bus: handling a %s message failed", channel)
