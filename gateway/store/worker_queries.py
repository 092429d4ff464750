"""Blocking queries on the workers table (run on the store thread)."""
import logging

from peewee import IntegrityError

from .common import check_fields, first_dict, now
from .errors import DuplicateError

logger = logging.getLogger(__name__)


def list_workers(m):
    """All workers ordered by id."""
    return list(m.Worker.select().order_by(m.Worker.id).dicts())


def get_worker(m, worker_id):
    """One worker as a dict, or None."""
    return first_dict(m.Worker.select().where(m.Worker.id == worker_id))


def add_worker(m, fields):
    """Insert a worker and return it; DuplicateError if the url exists."""
    row = check_fields(m.Worker, fields)
    row.pop("id", None)
    if not row.get("url"):
        raise ValueError("worker url is required")
    if not row.get("name"):
        row["name"] = row["url"]
    stamp = now()
    row.setdefault("created_at", stamp)
    row.setdefault("updated_at", stamp)
    try:
        worker_id = m.Worker.insert(row).execute()
    except IntegrityError as exc:
        raise DuplicateError("worker url already registered: %s"
                             % row["url"]) from exc
    return get_worker(m, worker_id)


def update_worker(m, worker_id, fields):
    """Change a worker; return it, or None when it does not exist."""
    row = check_fields(m.Worker, fields)
    row.pop("id", None)
    row.setdefault("updated_at", now())
    try:
        count = (m.Worker.update(row)
                 .where(m.Worker.id == worker_id).execute())
    except IntegrityError as exc:
        raise DuplicateError("worker url already registered: %s"
                             % row.get("url")) from exc
    return get_worker(m, worker_id) if count else None


def delete_worker(m, worker_id):
    """Delete a worker; True when a row was removed."""
    return m.Worker.delete().where(m.Worker.id == worker_id).execute() > 0
