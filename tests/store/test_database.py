"""open_database: SQLite pragmas, MySQL reconnect after a server-side drop."""
import pymysql
import pytest

from gateway.store import Store
from gateway.store.database import open_database

from .services import temporary_mysql_database


def test_sqlite_pragmas(tmp_path):
    db, models = open_database("sqlite", sqlite_path=str(tmp_path / "a.db"))
    try:
        pragma = lambda name: db.execute_sql("PRAGMA %s" % name).fetchone()[0]
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 5000
        assert {m._meta.table_name for m in models.all} <= set(db.get_tables())
    finally:
        db.close()


def test_sqlite_creates_parent_directory(tmp_path):
    path = tmp_path / "deep" / "er" / "gw.db"
    db, _ = open_database("sqlite", sqlite_path=str(path))
    db.close()
    assert path.exists()


def test_two_stores_do_not_share_model_binding(tmp_path):
    db1, m1 = open_database("sqlite", sqlite_path=str(tmp_path / "1.db"))
    db2, m2 = open_database("memory")
    try:
        m1.Setting.replace(key="a", value=1).execute()
        assert m2.Setting.select().count() == 0
        assert m1.Setting._meta.database is db1
        assert m2.Setting._meta.database is db2
    finally:
        db1.close()
        db2.close()


async def test_mysql_survives_server_side_disconnect():
    with temporary_mysql_database() as params:
        st = Store("mysql", mysql=params)
        await st.open()
        try:
            await st.add_worker({"url": "http://w:1"})
            conn_id = await st._run(
                lambda: st._db.execute_sql(
                    "SELECT CONNECTION_ID()").fetchone()[0])
            admin = pymysql.connect(autocommit=True, **{
                k: v for k, v in params.items() if k != "database"})
            with admin.cursor() as cur:
                cur.execute("KILL %d" % conn_id)
            admin.close()
            workers = await st.list_workers()
            assert [w["url"] for w in workers] == ["http://w:1"]
            new_id = await st._run(
                lambda: st._db.execute_sql(
                    "SELECT CONNECTION_ID()").fetchone()[0])
            assert new_id != conn_id
        finally:
            await st.close()


def test_mysql_requires_database_name():
    with pytest.raises(ValueError):
        open_database("mysql", mysql={"host": "127.0.0.1"})
