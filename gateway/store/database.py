"""Open a Peewee database (SQLite file, in-memory SQLite or MySQL/MariaDB).

Everything here is blocking; callers run it on the store's executor thread.
"""
import logging
import os

from peewee import MySQLDatabase, SqliteDatabase
from playhouse.migrate import SchemaMigrator, migrate
from playhouse.shortcuts import ReconnectMixin
from pymysql.constants import CLIENT

from .models import bind_models

logger = logging.getLogger(__name__)

SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("synchronous", "normal"),
    ("foreign_keys", 1),
    ("busy_timeout", 5000),
)
MYSQL_TABLE_OPTIONS = (
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci")
MYSQL_DEFAULTS = {"host": "localhost", "port": 3306, "user": "root",
                  "password": ""}


class ReconnectingMySQLDatabase(ReconnectMixin, MySQLDatabase):
    """MySQL database that reconnects after the server dropped an idle link."""


def open_database(kind, *, sqlite_path=None, mysql=None):
    """Connect, create missing tables, and return ``(db, models)``.

    ``kind`` is "sqlite" (file at ``sqlite_path``, ":memory:" allowed),
    "memory" (in-memory SQLite, tests only) or "mysql" (``mysql`` is a dict
    with host, port, user, password, database).
    """
    if kind == "memory":
        kind, sqlite_path = "sqlite", ":memory:"
    if kind == "sqlite":
        db = _open_sqlite(sqlite_path)
    elif kind == "mysql":
        db = _open_mysql(mysql or {})
    else:
        raise ValueError("unknown database kind %r (sqlite, memory, mysql)"
                         % (kind,))
    models = bind_models(db)
    existing = set(db.get_tables())
    create_missing_tables(db, models.all)
    add_missing_columns(db, [m for m in models.all if m._meta.table_name in existing])
    return db, models


def _open_sqlite(path):
    if not path:
        raise ValueError("sqlite_path is required for the sqlite store")
    if path != ":memory:":
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    pragmas = SQLITE_PRAGMAS
    if path != ":memory:":
        pragmas += (("wal_autocheckpoint", 0),)  # a thread of the store checkpoints (store/checkpoints.py)
    db = SqliteDatabase(path, pragmas=pragmas, timeout=5)
    db.connect()
    logger.info("store: SQLite %s", path)
    return db


def _open_mysql(params):
    conf = dict(MYSQL_DEFAULTS)
    conf.update({k: v for k, v in params.items() if v is not None})
    database = conf.pop("database", None)
    if not database:
        raise ValueError("mysql['database'] is required for the mysql store")
    conf["port"] = int(conf["port"])
    # FOUND_ROWS: an UPDATE reports matched rows, not only changed rows.
    db = ReconnectingMySQLDatabase(database, charset="utf8mb4",
                                   connect_timeout=5, read_timeout=15, write_timeout=15,
                                   client_flag=CLIENT.FOUND_ROWS, **conf)
    db.connect()
    logger.info("store: MySQL %s@%s:%s/%s", conf["user"], conf["host"],
                conf["port"], database)
    return db


def create_missing_tables(db, models):
    """Create tables (and their indexes) that do not exist yet."""
    if not isinstance(db, MySQLDatabase):
        db.create_tables(models, safe=True)
        return
    existing = set(db.get_tables())
    for model in models:
        if model._meta.table_name in existing:
            continue
        # Peewee has no portable hook for table options, so add them here.
        sql, params = model._schema._create_table(safe=True).query()
        db.execute_sql("%s %s" % (sql, MYSQL_TABLE_OPTIONS), params)
        model._schema.create_indexes(safe=False)
        logger.info("store: created MySQL table %s", model._meta.table_name)


def add_missing_columns(db, models):
    """Add the columns and indexes a newer gateway's models have to tables an older gateway created."""
    migrator = SchemaMigrator.from_database(db)
    for model in models:
        table = model._meta.table_name
        columns = {column.name for column in db.get_columns(table)}
        indexes = {tuple(index.columns) for index in db.get_indexes(table)}
        operations = []
        for field in model._meta.sorted_fields:
            if field.column_name not in columns:
                if not field.null and field.default is None:
                    raise RuntimeError("cannot add column %s.%s without a default; run docs/mysql_schema.sql"
                                       % (table, field.column_name))
                operations.append(migrator.add_column(table, field.column_name, field))
                logger.info("store: added column %s.%s", table, field.column_name)
        wanted = [((f.column_name,), bool(f.unique)) for f in model._meta.sorted_fields
                  if (f.index or f.unique) and not f.primary_key]
        wanted += [(tuple(model._meta.fields[name].column_name for name in names), unique)
                   for names, unique in model._meta.indexes]
        for names, unique in wanted:
            if names not in indexes:
                operations.append(migrator.add_index(table, names, unique))
                logger.info("store: added index on %s(%s)", table, ", ".join(names))
        if operations:
            migrate(*operations)
