"""docs/mysql_schema.sql must describe exactly the tables the models create."""
import os
import re

import pymysql
import pytest

from gateway.store.database import open_database
from gateway.store.models import MODELS

from .services import temporary_mysql_database

SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                           "mysql_schema.sql")


def schema_statements():
    """The SQL file's statements, comments removed."""
    with open(SCHEMA_FILE, encoding="utf-8") as fh:
        text = fh.read()
    text = re.sub(r"--[^\n]*", "", text)
    return [s.strip() for s in text.split(";") if s.strip()]


def run_schema_file(params):
    conn = pymysql.connect(autocommit=True, charset="utf8mb4", **params)
    try:
        with conn.cursor() as cur:
            for statement in schema_statements():
                cur.execute(statement)
    finally:
        conn.close()


def describe(params):
    """Tables, columns and indexes of a database, read from information_schema."""
    conn = pymysql.connect(charset="utf8mb4", **params)
    db = params["database"]
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name, engine, table_collation FROM "
                "information_schema.tables WHERE table_schema=%s", (db,))
            tables = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
            cur.execute(
                "SELECT table_name, column_name, ordinal_position, "
                "column_type, is_nullable, column_default, extra, "
                "character_set_name, collation_name FROM "
                "information_schema.columns WHERE table_schema=%s", (db,))
            columns = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
            cur.execute(
                "SELECT table_name, index_name, non_unique, seq_in_index, "
                "column_name FROM information_schema.statistics "
                "WHERE table_schema=%s ORDER BY table_name, index_name, "
                "seq_in_index", (db,))
            indexes = {}
            for table, name, non_unique, _, column in cur.fetchall():
                key = (table, name)
                unique, cols = indexes.get(key, (not non_unique, ()))
                indexes[key] = (unique, cols + (column,))
    finally:
        conn.close()
    return {"tables": tables, "columns": columns, "indexes": indexes}


def differences(expected, actual):
    """Human-readable differences between two describe() results."""
    out = []
    for part in ("tables", "columns", "indexes"):
        exp, act = expected[part], actual[part]
        for key in sorted(set(exp) | set(act)):
            if exp.get(key) != act.get(key):
                out.append("%s %s: models=%r sql=%r"
                           % (part, key, exp.get(key), act.get(key)))
    return out


def expected_type(field):
    """The information_schema column_type prefix a model field must have."""
    kind = field.field_type
    if kind in ("VARCHAR", "CHAR"):
        return "%s(%d)" % (kind.lower(), field.max_length)
    return {"AUTO": "int", "INT": "int", "BIGINT": "bigint",
            "DOUBLE": "double", "BOOL": "tinyint(1)", "TEXT": "text",
            "LONGTEXT": "longtext", "LONGBLOB": "longblob"}[kind]


@pytest.fixture
def from_models():
    with temporary_mysql_database() as params:
        db, _ = open_database("mysql", mysql=params)
        db.close()
        yield describe(params)


@pytest.fixture
def sql_params():
    with temporary_mysql_database() as params:
        run_schema_file(params)
        yield params


def test_schema_file_header():
    with open(SCHEMA_FILE, encoding="utf-8") as fh:
        head = [fh.readline() for _ in range(6)]
    assert head[0].startswith("--")
    assert "gateway/store/models.py" in "".join(head)


def test_sql_file_equals_models(from_models, sql_params):
    from_sql = describe(sql_params)
    assert differences(from_models, from_sql) == []


def test_sql_file_matches_model_metadata(sql_params):
    found = describe(sql_params)
    assert set(found["tables"]) == {m._meta.table_name for m in MODELS}
    for engine, collation in found["tables"].values():
        assert engine == "InnoDB" and collation.startswith("utf8mb4")
    for model in MODELS:
        table = model._meta.table_name
        cols = {c: v for (t, c), v in found["columns"].items() if t == table}
        fields = {f.column_name: f for f in model._meta.sorted_fields}
        assert set(cols) == set(fields), table
        for name, field in fields.items():
            nullable = cols[name][2]
            assert nullable == ("YES" if field.null else "NO"), (table, name)
            column_type, charset = cols[name][1], cols[name][5]
            assert column_type.startswith(expected_type(field)), (table, name)
            assert charset in (None, "utf8mb4"), (table, name)
        pk = found["indexes"][(table, "PRIMARY")]
        assert pk == (True, (model._meta.primary_key.column_name,))
        uniques = {cols for (t, _), (u, cols) in found["indexes"].items()
                   if t == table and u}
        for field in model._meta.sorted_fields:
            if field.unique:
                assert (field.column_name,) in uniques, (table, field.name)


def test_comparison_detects_a_drift(from_models, sql_params):
    conn = pymysql.connect(autocommit=True, **sql_params)
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE jobs ADD COLUMN extra INT NULL")
        cur.execute("ALTER TABLE workers MODIFY name VARCHAR(100) NOT NULL")
        cur.execute("DROP INDEX jobs_state_created_at ON jobs")
    conn.close()
    diff = "\n".join(differences(from_models, describe(sql_params)))
    assert "'jobs', 'extra'" in diff
    assert "'workers', 'name'" in diff
    assert "jobs_state_created_at" in diff


async def test_store_opens_on_a_schema_file_database(sql_params):
    from gateway.store import Store
    st = Store("mysql", mysql=sql_params)
    await st.open()
    try:
        job = await st.insert_job({"prompt_id": "p", "gateway_job_id": "g",
                                   "seq": 1, "body": {"emoji": "🎨"}})
        assert job["body"] == {"emoji": "🎨"}
    finally:
        await st.close()
    run_schema_file(sql_params)  # idempotent: IF NOT EXISTS
