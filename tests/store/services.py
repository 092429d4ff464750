"""Reachability checks for the real services tests use (MariaDB, Redis).

``require_mysql()`` / ``require_redis()`` return connection info, or skip the
calling test with a printed reason when the service is down. With
``GATEWAY_TEST_REQUIRE_SERVICES=1`` an unreachable service fails the test
instead (CI sets it so a missing service cannot hide behind skips).

Connection info comes from GATEWAY_TEST_MYSQL_HOST / _PORT / _USER /
_PASSWORD and GATEWAY_TEST_REDIS_URL (defaults: root@127.0.0.1:3306 with an
empty password, redis://127.0.0.1:6379/0).
"""
import contextlib
import functools
import os
import uuid

import pymysql
import pytest

REQUIRE_ENV = "GATEWAY_TEST_REQUIRE_SERVICES"


def mysql_params():
    """Server connection parameters (no database) from the environment."""
    return {
        "host": os.environ.get("GATEWAY_TEST_MYSQL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("GATEWAY_TEST_MYSQL_PORT", "3306")),
        "user": os.environ.get("GATEWAY_TEST_MYSQL_USER", "root"),
        "password": os.environ.get("GATEWAY_TEST_MYSQL_PASSWORD", ""),
    }


def redis_url():
    """Redis URL from the environment."""
    return os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required():
    """True when an unreachable service must fail rather than skip."""
    return os.environ.get(REQUIRE_ENV) == "1"


def unavailable(reason):
    """Skip (default) or fail (GATEWAY_TEST_REQUIRE_SERVICES=1)."""
    if services_required():
        pytest.fail("%s (%s=1 makes this a failure)" % (reason, REQUIRE_ENV),
                    pytrace=False)
    print("SKIP: " + reason)
    pytest.skip(reason)


@functools.lru_cache(maxsize=None)
def _mysql_problem(host, port, user, password):
    try:
        conn = pymysql.connect(host=host, port=port, user=user,
                               password=password, connect_timeout=2)
        conn.close()
    except Exception as exc:  # any failure means "not usable here"
        return "MariaDB/MySQL at %s:%s unreachable: %s" % (host, port, exc)
    return None


@functools.lru_cache(maxsize=None)
def _redis_problem(url):
    import redis
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        from gateway.store.redis_cache import mask_url
        return "Redis at %s unreachable: %s" % (mask_url(url),
                                                type(exc).__name__)
    return None


def require_mysql():
    """MySQL params dict (host, port, user, password), or skip/fail."""
    params = mysql_params()
    problem = _mysql_problem(**params)
    if problem:
        unavailable(problem)
    return params


def require_redis():
    """The Redis URL, or skip/fail."""
    url = redis_url()
    problem = _redis_problem(url)
    if problem:
        unavailable(problem)
    return url


def _admin(params, sql):
    conn = pymysql.connect(autocommit=True, **params)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@contextlib.contextmanager
def temporary_mysql_database(prefix="gw_test_"):
    """Create a fresh utf8mb4 database, yield params incl. ``database``, drop it."""
    params = require_mysql()
    name = prefix + uuid.uuid4().hex[:12]
    _admin(params, "CREATE DATABASE `%s` CHARACTER SET utf8mb4 "
                   "COLLATE utf8mb4_unicode_ci" % name)
    try:
        yield dict(params, database=name)
    finally:
        _admin(params, "DROP DATABASE IF EXISTS `%s`" % name)
