"""RedisCache against the real server (unique prefix) and a closed port."""
import asyncio
import logging
import uuid

import pytest
import redis.asyncio as aioredis

from gateway.store.redis_cache import RedisCache, mask_url
from tests.harness import free_port

from .services import require_redis


@pytest.fixture
async def cache():
    url = require_redis()
    prefix = "gw-test-%s:" % uuid.uuid4().hex[:10]
    c = RedisCache(url, prefix=prefix)
    assert await c.connect() is True
    raw = aioredis.from_url(url, decode_responses=True)
    c.raw = raw
    yield c
    await c.close()
    keys = [k async for k in raw.scan_iter(match=prefix + "*")]
    if keys:
        await raw.delete(*keys)
    await raw.aclose()


async def test_put_get_json_under_prefix(cache):
    value = {"queue_remaining": 3, "running": ["a"], "name": "wörker"}
    assert await cache.put_json("load:1", value, ttl=30) is True
    assert await cache.get_json("load:1") == value
    assert await cache.raw.exists(cache.prefix + "load:1") == 1
    assert await cache.raw.exists("load:1") == 0
    assert await cache.get_json("missing") is None
    await cache.put_json("load:2", [1, 2])
    assert await cache.raw.ttl(cache.prefix + "load:2") == -1  # no expiry
    assert await cache.get_many_json(["load:1", "load:2", "nope"]) == {
        "load:1": value, "load:2": [1, 2]}
    assert await cache.delete("load:2") is True
    assert await cache.delete("load:2") is False
    assert await cache.ping() is True


async def test_ttl_expires(cache):
    await cache.put_json("short", {"x": 1}, ttl=0.3)
    pttl = await cache.raw.pttl(cache.prefix + "short")
    assert 0 < pttl <= 300
    await cache.put_json("long", 1, ttl=5)
    assert 4 <= await cache.raw.ttl(cache.prefix + "long") <= 5
    await asyncio.sleep(0.4)
    assert await cache.get_json("short") is None
    assert await cache.get_json("long") == 1


async def test_publish_subscribe(cache):
    sub = cache.subscribe("events")
    assert await sub.start() is True
    other = cache.subscribe("other")
    await other.start()
    assert await cache.publish("events", {"type": "job", "id": 1}) == 1
    await cache.publish("other", {"type": "noise"})
    assert await cache.publish("events", {"type": "job", "id": 2}) == 1
    got = [await asyncio.wait_for(sub.__anext__(), 3) for _ in range(2)]
    assert got == [{"type": "job", "id": 1}, {"type": "job", "id": 2}]
    # A non-prefixed publish on the bare channel name is not seen.
    await cache.raw.publish("events", '{"type": "foreign"}')
    await sub.close()
    with pytest.raises(StopAsyncIteration):
        await sub.__anext__()
    await other.close()


async def test_subscribe_as_context_manager(cache):
    received = []

    async def listen():
        async with cache.subscribe("ctx") as sub:
            ready.set()
            async for message in sub:
                received.append(message)
                if len(received) == 2:
                    return

    ready = asyncio.Event()
    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 3)
    await cache.raw.publish(cache.prefix + "ctx", "not json")
    await cache.publish("ctx", {"n": 1})
    await cache.publish("ctx", {"n": 2})
    await asyncio.wait_for(task, 5)
    assert received == [{"n": 1}, {"n": 2}]


async def test_unreachable_redis_degrades_to_noop(caplog):
    url = "redis://:s3cret-pw@127.0.0.1:%d/0" % free_port()
    c = RedisCache(url, prefix="gw-test-dead:", timeout=0.5)
    with caplog.at_level(logging.INFO, logger="gateway.store"):
        assert await c.connect() is False
        assert c.available is False
        assert await c.put_json("k", {"a": 1}, ttl=5) is False
        assert await c.get_json("k") is None
        assert await c.get_many_json(["k"]) == {}
        assert await c.delete("k") is False
        assert await c.publish("ch", {"a": 1}) == 0
        assert await c.ping() is False
        messages = [m async for m in c.subscribe("ch")]
        assert messages == []
        await c.close()
    assert "s3cret-pw" not in caplog.text
    assert ":***@127.0.0.1" in caplog.text
    # One warning for the outage, not one per call.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text


async def test_recovers_after_backoff_window():
    url = require_redis()
    c = RedisCache(url, prefix="gw-test-%s:" % uuid.uuid4().hex[:8],
                   retry_after=0.2)
    await c.connect()
    c._log_failure("test", OSError("simulated"))
    assert await c.put_json("k", 1) is False  # inside the window: no-op
    await asyncio.sleep(0.25)
    assert await c.put_json("k", 1, ttl=5) is True
    assert await c.get_json("k") == 1
    await c.delete("k")
    await c.close()


def test_mask_url():
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("redis://user:p%40ss@h/1") == "redis://user:***@h/1"
    assert mask_url("rediss://token@h:6380") == "rediss://***@h:6380"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"
