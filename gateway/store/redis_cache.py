"""Optional Redis cache: shared worker-load values and cross-instance events.

Redis is a helper, never a dependency: every error is logged (with the URL's
password masked) and the call degrades to a no-op. After a failure the cache
stays quiet for ``retry_after`` seconds, then tries again, so a Redis that
comes back is used again without a restart.
"""
import json
import logging
import time
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .redis_subscription import ERRORS, Subscription

logger = logging.getLogger(__name__)


def mask_url(url):
    """The URL with its password (or bare userinfo) replaced by ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    masked = "%s:***" % user if colon else "***"
    return urlunsplit(parts._replace(netloc="%s@%s" % (masked, hostport)))


class RedisCache:
    """JSON values with TTL and pub/sub, all under one key prefix."""

    def __init__(self, url, prefix="comfyui-gateway:", *, timeout=2.0,
                 retry_after=5.0):
        self.url = url
        self.prefix = prefix
        self.safe_url = mask_url(url)
        self._password = urlsplit(url).password
        self._timeout = timeout
        self._retry_after = retry_after
        self._client = None
        self._down_until = 0.0

    @property
    def available(self):
        """True when connected and not inside a back-off window."""
        return (self._client is not None
                and time.monotonic() >= self._down_until)

    async def connect(self):
        """Create the client and ping; False (logged) when unreachable."""
        if self._client is None:
            try:
                self._client = aioredis.from_url(
                    self.url, decode_responses=True,
                    socket_connect_timeout=self._timeout,
                    socket_timeout=self._timeout,
                    retry=Retry(NoBackoff(), 1))
            except (ValueError, *ERRORS) as exc:
                self._log_failure("connect", exc)
                return False
        ok = await self.ping()
        if ok:
            logger.info("redis: connected to %s", self.safe_url)
        return ok

    async def close(self):
        """Close the client (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except ERRORS as exc:
                logger.debug("redis: close failed: %s", self._scrub(exc))

    async def ping(self):
        """True when Redis answers."""
        return bool(await self._call("ping", lambda c: c.ping(), False,
                                     force=True))

    async def put_json(self, key, value, ttl=None):
        """Store ``value`` as JSON under prefix+key, expiring after ``ttl`` s."""
        data = json.dumps(value, separators=(",", ":"))
        px = max(1, int(ttl * 1000)) if ttl else None
        return bool(await self._call(
            "set", lambda c: c.set(self.prefix + key, data, px=px), False))

    async def get_json(self, key):
        """The JSON value under prefix+key, or None (missing/unavailable)."""
        raw = await self._call("get", lambda c: c.get(self.prefix + key),
                               None)
        return _loads(raw)

    async def get_many_json(self, keys):
        """``{key: value}`` for the keys that exist (one round trip)."""
        keys = list(keys)
        if not keys:
            return {}
        raws = await self._call(
            "mget", lambda c: c.mget([self.prefix + k for k in keys]), None)
        if not raws:
            return {}
        return {k: _loads(r) for k, r in zip(keys, raws) if r is not None}

    async def delete(self, key):
        """Remove prefix+key; True when it existed."""
        return bool(await self._call(
            "delete", lambda c: c.delete(self.prefix + key), 0))

    async def publish(self, channel, message):
        """Publish a JSON message on prefix+channel; number of receivers."""
        data = json.dumps(message, separators=(",", ":"))
        return int(await self._call(
            "publish", lambda c: c.publish(self.prefix + channel, data), 0))

    def subscribe(self, channel):
        """An async iterator of the dicts published on prefix+channel."""
        return Subscription(self, channel)

    async def _call(self, op, fn, default, force=False):
        if self._client is None:
            return default
        if not force and time.monotonic() < self._down_until:
            return default
        try:
            result = await fn(self._client)
        except ERRORS as exc:
            self._log_failure(op, exc)
            return default
        if self._down_until:
            logger.info("redis: %s reachable again", self.safe_url)
            self._down_until = 0.0
        return result

    def _log_failure(self, op, exc):
        if not self._down_until:
            logger.warning("redis: %s on %s failed (%s: %s); cache disabled "
                           "for %.0fs", op, self.safe_url,
                           type(exc).__name__, self._scrub(exc),
                           self._retry_after)
        self._down_until = time.monotonic() + self._retry_after

    def _scrub(self, exc):
        text = str(exc)
        return text.replace(self._password, "***") if self._password else text


def _loads(raw):
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        logger.warning("redis: ignoring a value that is not JSON")
        return None
