"""Blocking queries of the cluster (store thread): the dispatcher lease, instances, counters, worker status.

Times that several instances compare (lease expiry, heartbeats) are taken from the database's own clock,
so instances whose clocks disagree still agree on who holds the lease.
"""
import logging
import zlib

from peewee import SQL, MySQLDatabase

from .common import first_dict

logger = logging.getLogger(__name__)

DISPATCHER = "dispatcher"
JOB_SEQ = "job_seq"


def now_sql(db):
    """SQL for the database's clock in epoch seconds (sub-second)."""
    if isinstance(db, MySQLDatabase):
        return "UNIX_TIMESTAMP(NOW(6))"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def db_now(m):
    """The database's clock, epoch seconds."""
    db = m.Lease._meta.database
    return float(db.execute_sql("SELECT " + now_sql(db)).fetchone()[0])


def fence_sql(db):
    """A WHERE condition (one parameter: the epoch) true only while that epoch holds the dispatcher lease."""
    quote = db.quote[0] + "%s" + db.quote[1]
    return ("EXISTS (SELECT 1 FROM %s WHERE %s = '%s' AND %s = %s AND %s > %s)"
            % (quote % "gateway_lease", quote % "name", DISPATCHER, quote % "epoch", db.param,
               quote % "expires_at", now_sql(db)))


def lease_holds(m, epoch, name=DISPATCHER):
    """True while `epoch` holds the lease (not expired in the database's clock)."""
    lease = m.Lease
    now = SQL(now_sql(lease._meta.database))
    return lease.select().where((lease.name == name) & (lease.epoch == epoch) & (lease.expires_at > now)).exists()


def read_lease(m, name=DISPATCHER):
    """The lease row (holder, holder_name, epoch, expires_at) plus the database's `now`; None before first use."""
    row = first_dict(m.Lease.select().where(m.Lease.name == name))
    if row is not None:
        row["now"] = db_now(m)
    return row


def acquire_lease(m, holder, holder_name, ttl, force=False, name=DISPATCHER):
    """Take the lease if it is free or expired (or unconditionally with `force`), with a new epoch.

    Returns the lease row with ``held`` (True when this call took it) and the database's ``now``.
    Two instances racing both run the conditional UPDATE; the row lock lets exactly one match.
    """
    lease = m.Lease
    db = lease._meta.database
    now = SQL(now_sql(db))
    lease.insert(name=name, epoch=0, expires_at=0).on_conflict_ignore().execute()
    query = lease.update(holder=holder, holder_name=holder_name, epoch=lease.epoch + 1, expires_at=now + ttl,
                         acquired_at=now).where(lease.name == name)
    if not force:
        query = query.where((lease.expires_at < now) | lease.holder.is_null())
    taken = query.execute() == 1
    row = read_lease(m, name)
    row["held"] = taken and row["holder"] == holder
    return row


def renew_lease(m, holder, epoch, ttl, name=DISPATCHER):
    """Extend a lease this holder still has (same epoch, not expired); False when it is lost."""
    lease = m.Lease
    now = SQL(now_sql(lease._meta.database))
    return lease.update(expires_at=now + ttl).where(
        (lease.name == name) & (lease.holder == holder) & (lease.epoch == epoch) & (lease.expires_at >= now)
    ).execute() == 1


def release_lease(m, holder, epoch, name=DISPATCHER):
    """Give a held lease up at once (a clean shutdown), so another instance takes over without waiting."""
    lease = m.Lease
    return lease.update(expires_at=0).where((lease.name == name) & (lease.holder == holder)
                                            & (lease.epoch == epoch)).execute() == 1


def heartbeat(m, fields):
    """Write this instance's row with the database's time as its heartbeat; returns that time."""
    now = db_now(m)
    row = dict(fields, heartbeat_at=now)
    m.Instance.replace(row).execute()
    return now


def list_instances(m, within):
    """Instances whose last heartbeat is at most `within` seconds old, and the database's now."""
    now = db_now(m)
    rows = m.Instance.select().where(m.Instance.heartbeat_at >= now - within).order_by(m.Instance.started_at)
    return {"now": now, "instances": list(rows.dicts())}


def forget_instance(m, instance_id):
    """Remove an instance's row (it stopped cleanly)."""
    return m.Instance.delete().where(m.Instance.id == instance_id).execute()


def prune_instances(m, older_than):
    """Remove instances silent for longer than `older_than` seconds."""
    now = db_now(m)
    return m.Instance.delete().where(m.Instance.heartbeat_at < now - older_than).execute()


def raise_counter(m, at_least, name=JOB_SEQ):
    """Make sure the counter exists and is at least `at_least`."""
    counter = m.Counter
    counter.insert(name=name, value=at_least).on_conflict_ignore().execute()
    counter.update(value=at_least).where((counter.name == name) & (counter.value < at_least)).execute()


def next_count(m, name=JOB_SEQ):
    """The counter's next value, unique across instances (the row lock orders concurrent callers)."""
    counter = m.Counter
    db = counter._meta.database
    quote = db.quote[0] + "%s" + db.quote[1]
    table, value, key = quote % "gateway_counters", quote % "value", quote % "name"
    if isinstance(db, MySQLDatabase):
        # LAST_INSERT_ID(expr) hands the new value back with the UPDATE itself: one round trip.
        cursor = db.execute_sql("UPDATE %s SET %s = LAST_INSERT_ID(%s + 1) WHERE %s = %s"
                                % (table, value, value, key, db.param), (name,))
        if cursor.rowcount != 1:
            raise LookupError("counter %s does not exist" % name)
        return int(cursor.lastrowid)
    with db.atomic():
        if counter.update(value=counter.value + 1).where(counter.name == name).execute() != 1:
            raise LookupError("counter %s does not exist" % name)
        return counter.select(counter.value).where(counter.name == name).scalar()


def put_worker_status(m, rows):
    """Write the live state of some workers: [{worker_id, status, object_info_hash, updated_at}]."""
    if rows:
        with m.WorkerStatus._meta.database.atomic():
            for row in rows:
                m.WorkerStatus.replace(row).execute()


def worker_status_since(m, since):
    """Live worker states written after `since` (the writer's clock)."""
    status = m.WorkerStatus
    return list(status.select().where(status.updated_at > since).dicts())


def forget_worker_status(m, worker_id):
    """Drop a deleted worker's live state."""
    return m.WorkerStatus.delete().where(m.WorkerStatus.worker_id == worker_id).execute()


def put_object_info(m, digest, info_json, now):
    """Keep an /object_info (JSON text) once per content hash."""
    m.ObjectInfo.insert(hash=digest, body=zlib.compress(info_json.encode(), 6),
                        created_at=now).on_conflict_ignore().execute()


def get_object_info(m, digest):
    """The /object_info JSON text stored under a hash, or None."""
    body = m.ObjectInfo.select(m.ObjectInfo.body).where(m.ObjectInfo.hash == digest).scalar()
    return zlib.decompress(bytes(body)).decode() if body is not None else None
