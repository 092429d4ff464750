"""Fixtures of the cluster tests: a throwaway MariaDB database, and gateway processes on it."""

from __future__ import annotations

import pytest

from tests.store.services import require_redis, temporary_mysql_database

from .helpers import Nodes


@pytest.fixture
async def nodes(tmp_path):
    """Gateway instances on one new MariaDB database and the machine's Redis (own key prefix)."""
    redis_url = require_redis()
    with temporary_mysql_database() as mysql:
        group = Nodes(tmp_path, mysql, redis_url)
        try:
            yield group
        finally:
            await group.stop()


@pytest.fixture
def mysql_database():
    """A new MariaDB database (connection parameters), dropped after the test."""
    with temporary_mysql_database() as mysql:
        yield mysql
