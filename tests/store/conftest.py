"""Fixtures: a Store on SQLite (temp file) and on a throwaway MariaDB database."""
import pytest

from gateway.store import Store

from .services import temporary_mysql_database


@pytest.fixture(params=["sqlite", "mysql"])
def store_config(request, tmp_path):
    """Keyword arguments for Store(); the MySQL database is dropped after."""
    if request.param == "sqlite":
        yield {"kind": "sqlite", "sqlite_path": str(tmp_path / "gw.sqlite3")}
        return
    with temporary_mysql_database() as mysql:
        yield {"kind": "mysql", "mysql": mysql}


@pytest.fixture
async def store(store_config):
    """An open Store, closed after the test."""
    st = Store(**store_config)
    await st.open()
    yield st
    await st.close()
