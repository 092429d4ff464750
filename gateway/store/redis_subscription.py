"""``Subscription``: async iteration over one Redis pub/sub channel."""
import asyncio
import json
import logging

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a Redis call raises when the server is unreachable or misbehaves.
ERRORS = (RedisError, OSError, asyncio.TimeoutError)

POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


class Subscription:
    """Yields JSON dicts published on a channel until ``close()``.

    If Redis is unavailable when the subscription starts, iteration ends at
    once (no-op). If the connection is lost later, it resubscribes with
    back-off; messages published meanwhile are lost (pub/sub has no replay).
    """

    def __init__(self, cache, channel):
        self.cache = cache
        self.channel = cache.prefix + channel
        self._pubsub = None
        self._closed = False
        self._started = False

    async def start(self):
        """Subscribe now (else on first iteration); False if unavailable."""
        if self._pubsub is not None:
            return True
        client = self.cache._client
        if client is None or not self.cache.available or self._closed:
            return False
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
        except ERRORS as exc:
            self.cache._log_failure("subscribe", exc)
            await _quiet_close(pubsub)
            return False
        self._pubsub, self._started = pubsub, True
        return True

    async def close(self):
        """Unsubscribe and end iteration."""
        self._closed = True
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await _quiet_close(pubsub)

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    def __aiter__(self):
        return self

    async def __anext__(self):
        backoff = 1.0
        while not self._closed:
            if self._pubsub is None and not await self.start():
                if not self._started or self._closed:
                    raise StopAsyncIteration
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            try:
                msg = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=POLL_SECONDS)
            except ERRORS as exc:
                if self._closed:
                    break
                logger.warning("redis: subscription %s lost (%s); "
                               "resubscribing", self.channel,
                               type(exc).__name__)
                pubsub, self._pubsub = self._pubsub, None
                await _quiet_close(pubsub)
                continue
            if msg is None or msg.get("type") != "message":
                continue
            try:
                return json.loads(msg["data"])
            except ValueError:
                logger.warning("redis: non-JSON message on %s ignored",
                               self.channel)
        raise StopAsyncIteration


async def _quiet_close(pubsub):
    try:
        await pubsub.aclose()
    except ERRORS:
        pass
