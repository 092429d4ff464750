"""Blocking queries on the jobs table (run on the store thread)."""
import contextlib
import logging
import math

from peewee import IntegrityError, MySQLDatabase, fn

from . import cluster_queries
from .common import check_fields, first_dict, now
from .errors import DuplicateError, FencedError
from .models import FINISHED_STATES, JOB_STATES, UNFINISHED_STATES, RawJSON

logger = logging.getLogger(__name__)

# Columns left out of list_jobs items unless include_payload=True (they can
# be megabytes: the workflow and the final history).
PAYLOAD_COLUMNS = ("body", "history")
# job_stats returns one bucket per minute; cap the window at one day.
MAX_STATS_MINUTES = 24 * 60


def _ready_statement(model, key, build):
    """A statement built once per bound model class and key: build(meta, quote) -> (sql, fields).

    Every accepted job is inserted before its client is answered and every state change is an
    update, on the store thread while the loop serves requests: Peewee's query builder cost about
    0.2-0.25 ms per statement there, the ready statement about 0.05 ms.
    """
    cache = model.__dict__.get("_ready_statements")
    if cache is None:
        cache = model._ready_statements = {}
    if key not in cache:
        db = model._meta.database
        cache[key] = build(model._meta, lambda name: db.quote[0] + name + db.quote[1], db.param)
    return cache[key]


def _insert_statement(model, fenced):
    """(sql, fields) of an INSERT of every column; fenced: only while an epoch holds the lease (one more param)."""
    def build(meta, quote, param):
        fields = list(meta.sorted_fields)
        columns = ", ".join(quote(f.column_name) for f in fields)
        values = ", ".join([param] * len(fields))
        if not fenced:
            return "INSERT INTO %s (%s) VALUES (%s)" % (quote(meta.table_name), columns, values), fields
        source = " FROM DUAL" if isinstance(meta.database, MySQLDatabase) else ""
        return ("INSERT INTO %s (%s) SELECT %s%s WHERE %s" % (quote(meta.table_name), columns, values, source,
                                                              cluster_queries.fence_sql(meta.database)), fields)
    return _ready_statement(model, ("insert", fenced), build)


def _default_of(field):
    default = field.default
    return default() if callable(default) else default


def insert_job(m, fields, fetch=True, fence=None, seq_from=None):
    """Insert a job and return it (None unless ``fetch``); DuplicateError on a known id.

    ``seq_from`` ("plain" or "front"): take ``seq`` from the cluster counter and, when the job has no
    explicit ``number``, derive it as ComfyUI does (``seq``, or ``-seq`` for front); the row then
    returns as ``{"seq", "number"}`` without ``fetch``. Counter and row are one transaction (one commit,
    one log flush). ``fence``: insert only while that dispatcher epoch holds the lease (the row says
    "sent to a worker"), else FencedError.
    """
    row = check_fields(m.Job, fields)
    row.setdefault("state", "queued")
    stamp = now()
    row.setdefault("created_at", stamp)
    row.setdefault("updated_at", stamp)
    db = m.Job._meta.database
    sql, columns = _insert_statement(m.Job, fence is not None)
    try:
        with db.atomic() if seq_from is not None else contextlib.nullcontext():
            if seq_from is not None:
                row["seq"] = cluster_queries.next_count(m)
                if row.get("number") is None:
                    row["number"] = float(-row["seq"] if seq_from == "front" else row["seq"])
            params = [f.db_value(row[f.name] if f.name in row else _default_of(f)) for f in columns]
            if fence is not None:
                params.append(fence)
            if db.execute_sql(sql, params).rowcount == 0:
                raise FencedError("dispatcher epoch %s no longer holds the lease" % fence)
    except IntegrityError as exc:
        raise DuplicateError("job already stored: %s"
                             % row.get("prompt_id")) from exc
    if fetch:
        return get_job(m, row["prompt_id"])
    return {"seq": row["seq"], "number": row.get("number")}


def insert_jobs(m, items):
    """Insert several jobs in one transaction (one commit, one log write).

    ``items``: ``[(fields, fence, seq_from), ...]`` as for :func:`insert_job` without fetch. Returns, per
    item, what insert_job returned or the DuplicateError / FencedError it raised: a refused row does not
    stop the others (both SQLite and InnoDB undo only the failing statement). Any other error undoes
    the whole transaction and is raised.
    """
    results = []
    with m.Job._meta.database.atomic():
        for fields, fence, seq_from in items:
            try:
                results.append(insert_job(m, fields, False, fence, seq_from))
            except (DuplicateError, FencedError) as exc:
                results.append(exc)
    return results


def _update_statement(model, names, fenced):
    """(sql, fields) of an UPDATE of these columns of one job by prompt id (fenced: one more param)."""
    def build(meta, quote, param):
        fields = [meta.fields[name] for name in names]
        sql = "UPDATE %s SET %s WHERE %s = %s" % (
            quote(meta.table_name), ", ".join("%s = %s" % (quote(f.column_name), param) for f in fields),
            quote(meta.fields["prompt_id"].column_name), param)
        if fenced:
            sql += " AND " + cluster_queries.fence_sql(meta.database)
        return sql, fields
    return _ready_statement(model, ("update", names, fenced), build)


def update_job(m, prompt_id, fields, fence=None):
    """Change some columns of a job; True when the job exists.

    ``fence``: only while that dispatcher epoch holds the lease; FencedError when it does not, so a
    dispatcher that lost its lease (paused, cut off) can change nothing the new one relies on.
    """
    row = check_fields(m.Job, fields)
    row.setdefault("updated_at", now())
    names = tuple(sorted(row))
    sql, columns = _update_statement(m.Job, names, fence is not None)
    params = [f.db_value(row[f.name]) for f in columns] + [prompt_id]
    if fence is not None:
        params.append(fence)
    try:
        count = m.Job._meta.database.execute_sql(sql, params).rowcount
    except IntegrityError as exc:
        raise DuplicateError("job id clash updating %s" % prompt_id) from exc
    if count == 0 and fence is not None and not cluster_queries.lease_holds(m, fence):
        raise FencedError("dispatcher epoch %s no longer holds the lease" % fence)
    return count > 0


def changed_jobs(m, since, limit=5000):
    """Jobs (without workflow and history) written after `since` (the writers' clock), oldest change first."""
    job = m.Job
    columns = [f for f in job._meta.sorted_fields if f.name not in PAYLOAD_COLUMNS]
    return list(job.select(*columns).where(job.updated_at > since).order_by(job.updated_at)
                .limit(limit).dicts())


def queued_since(m, since, limit=5000):
    """Whole rows of jobs waiting in the gateway that were created after `since`, in arrival order."""
    job = m.Job
    return list(job.select().where((job.state == "queued") & (job.created_at > since))
                .order_by(job.seq).limit(limit).dicts())


def get_jobs(m, prompt_ids):
    """Whole rows of these jobs (the ones that exist)."""
    if not prompt_ids:
        return []
    return list(m.Job.select().where(m.Job.prompt_id.in_(list(prompt_ids))).dicts())


def get_job(m, prompt_id):
    """One job as a dict, or None."""
    return first_dict(m.Job.select().where(m.Job.prompt_id == prompt_id))


def get_job_by_gateway_id(m, gateway_job_id):
    """The job with this gateway job id, or None."""
    return first_dict(m.Job.select()
                      .where(m.Job.gateway_job_id == gateway_job_id))


def load_unfinished_jobs(m, body_as_text=False):
    """Jobs still queued/submitted/running, in arrival (seq) order.

    ``body_as_text``: the body column as the JSON text it is stored as (a RawJSON), not parsed: a restart
    with 100,000 waiting jobs spent most of its time parsing workflows nobody would read for a while.
    """
    query = m.Job.select().where(m.Job.state.in_(UNFINISHED_STATES)).order_by(m.Job.seq)
    if not body_as_text:
        return list(query.dicts())
    job = m.Job
    fields = job._meta.sorted_fields
    sql, params = query.sql()
    out = []
    for values in job._meta.database.execute_sql(sql, params).fetchall():
        row = {}
        for field, value in zip(fields, values):
            if field.name == "body":
                row["body"] = RawJSON(value.decode() if isinstance(value, bytes) else value)
            else:
                row[field.name] = field.python_value(value)
        out.append(row)
    return out


def max_job_seq(m):
    """Highest seq stored (0 when there are no jobs)."""
    return m.Job.select(fn.MAX(m.Job.seq)).scalar() or 0


def _job_filters(job, state, worker_id, client_id, since, until):
    conds = []
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        conds.append(job.state.in_(states))
    if worker_id is not None:
        conds.append(job.worker_id == worker_id)
    if client_id is not None:
        conds.append(job.client_id == client_id)
    if since is not None:
        conds.append(job.created_at >= since)
    if until is not None:
        conds.append(job.created_at < until)
    return conds


def list_jobs(m, state=None, worker_id=None, client_id=None, since=None,
              until=None, limit=50, offset=0, include_payload=False,
              has_history=False, id_prefix=None):
    """A page of jobs, newest first, and the total matching the filters.

    ``id_prefix``: only jobs whose prompt_id or gateway_job_id starts with it (the caller allows only
    id characters, so it holds no LIKE wildcards).
    """
    job = m.Job
    conds = _job_filters(job, state, worker_id, client_id, since, until)
    if id_prefix:
        conds.append(job.prompt_id.startswith(id_prefix) | job.gateway_job_id.startswith(id_prefix))
    if has_history:
        conds.append(job.history.is_null(False))
    columns = [f for f in job._meta.sorted_fields
               if include_payload or f.name not in PAYLOAD_COLUMNS]
    items = job.select(*columns)
    total = job.select(fn.COUNT(job.prompt_id))
    if conds:
        items = items.where(*conds)
        total = total.where(*conds)
    items = (items.order_by(job.created_at.desc(), job.seq.desc())
             .limit(max(0, int(limit))).offset(max(0, int(offset))))
    return {"items": list(items.dicts()), "total": total.scalar() or 0}


def count_jobs_by_state(m):
    """``{state: count}`` for every known state (zero when absent)."""
    counts = dict.fromkeys(JOB_STATES, 0)
    query = (m.Job.select(m.Job.state, fn.COUNT(m.Job.prompt_id))
             .group_by(m.Job.state).tuples())
    for state, count in query:
        counts[state] = count
    return counts


def job_stats(m, since, until=None):
    """Per-minute buckets of jobs finished in [since, until).

    Each bucket is ``{minute, finished, failed, mean_run_seconds}``: minute is
    the bucket start (epoch seconds), finished counts done jobs, failed counts
    failed jobs, mean_run_seconds averages finished_at - started_at over the
    done jobs that have started_at (None when there are none). Empty minutes
    are included; ``since`` is raised to at most MAX_STATS_MINUTES before
    ``until``.
    """
    until = now() if until is None else until
    since = max(since, until - MAX_STATS_MINUTES * 60.0)
    job = m.Job
    rows = (job.select(job.state, job.created_at, job.started_at, job.finished_at)
            .where((job.finished_at >= since) & (job.finished_at < until)
                   & job.state.in_(FINISHED_STATES))
            .tuples())
    first = int(math.floor(since / 60.0))
    last = int(math.floor(until / 60.0))
    buckets = {k: {"minute": k * 60.0, "finished": 0, "failed": 0,
                   "_runs": [], "_waits": []} for k in range(first, last + 1)}
    for state, created_at, started_at, finished_at in rows:
        bucket = buckets[int(math.floor(finished_at / 60.0))]
        if started_at is not None:
            bucket["_waits"].append(max(0.0, started_at - created_at))
        if state == "failed":
            bucket["failed"] += 1
            continue
        bucket["finished"] += 1
        if started_at is not None:
            bucket["_runs"].append(finished_at - started_at)
    result = []
    for key in sorted(buckets):
        bucket = buckets[key]
        runs = bucket.pop("_runs")
        waits = bucket.pop("_waits")
        bucket["mean_run_seconds"] = sum(runs) / len(runs) if runs else None
        bucket["mean_wait_seconds"] = sum(waits) / len(waits) if waits else None
        result.append(bucket)
    return result


def job_prompts(m, prompt_ids):
    """``{prompt_id: workflow}`` (the body's "prompt") of these jobs: for summaries of a listed page."""
    if not prompt_ids:
        return {}
    query = m.Job.select(m.Job.prompt_id, m.Job.body).where(m.Job.prompt_id.in_(list(prompt_ids))).tuples()
    return {prompt_id: (body or {}).get("prompt") or {} for prompt_id, body in query}


def worker_stats(m, since, until=None, buckets=12):
    """Per worker, jobs that finished in [since, until): ``{worker_id: {done, failed, run_seconds, runs,
    per_bucket}}``; run_seconds sums finished_at - started_at of the jobs that ran (done or failed after
    starting), per_bucket counts done jobs in ``buckets`` equal slices of the window (oldest first)."""
    until = now() if until is None else until
    since = max(since, until - MAX_STATS_MINUTES * 60.0)
    width = (until - since) / buckets
    job = m.Job
    rows = (job.select(job.worker_id, job.state, job.started_at, job.finished_at)
            .where((job.finished_at >= since) & (job.finished_at < until) & job.state.in_(FINISHED_STATES)
                   & job.worker_id.is_null(False))
            .tuples())
    out = {}
    for worker_id, state, started_at, finished_at in rows:
        entry = out.setdefault(worker_id, {"done": 0, "failed": 0, "run_seconds": 0.0, "runs": 0,
                                           "per_bucket": [0] * buckets})
        entry["done" if state == "done" else "failed"] += 1
        if started_at is not None:
            entry["run_seconds"] += max(0.0, finished_at - started_at)
            entry["runs"] += 1
        if state == "done":
            entry["per_bucket"][min(buckets - 1, int((finished_at - since) // width))] += 1
    return out


def delete_job(m, prompt_id, fence=None):
    """Delete a job that was never accepted (and its outputs); True when it existed.

    ``fence``: only while that dispatcher epoch holds the lease (see update_job), FencedError else.
    """
    if fence is not None and not cluster_queries.lease_holds(m, fence):
        raise FencedError("dispatcher epoch %s no longer holds the lease" % fence)
    with m.Job._meta.database.atomic():
        m.Output.delete().where(m.Output.prompt_id == prompt_id).execute()
        m.JobEvent.delete().where(m.JobEvent.prompt_id == prompt_id).execute()
        return m.Job.delete().where(m.Job.prompt_id == prompt_id).execute() > 0


def add_job_events(m, rows, fence=None):
    """Append timeline steps ({prompt_id, at, kind, worker_id, worker, detail}); ``fence``: see delete_job."""
    if fence is not None and not cluster_queries.lease_holds(m, fence):
        raise FencedError("dispatcher epoch %s no longer holds the lease" % fence)
    rows = [check_fields(m.JobEvent, row) for row in rows]
    with m.JobEvent._meta.database.atomic():
        m.JobEvent.insert_many(rows).execute()
    return len(rows)


def job_events(m, prompt_id, limit=200):
    """A job's timeline, oldest step first."""
    event = m.JobEvent
    query = (event.select(event.at, event.kind, event.worker_id, event.worker, event.detail)
             .where(event.prompt_id == prompt_id).order_by(event.at, event.id).limit(limit))
    return list(query.dicts())


def prune_jobs(m, keep_last):
    """Delete finished jobs (and their outputs) but the newest ``keep_last``."""
    job, out = m.Job, m.Output
    finished = job.state.in_(FINISHED_STATES)
    cutoff = (job.select(job.seq).where(finished).order_by(job.seq.desc())
              .limit(1).offset(max(0, int(keep_last))).scalar())
    if cutoff is None:
        return 0
    doomed = finished & (job.seq <= cutoff)
    with job._meta.database.atomic():
        out.delete().where(out.prompt_id.in_(
            job.select(job.prompt_id).where(doomed))).execute()
        m.JobEvent.delete().where(m.JobEvent.prompt_id.in_(
            job.select(job.prompt_id).where(doomed))).execute()
        return job.delete().where(doomed).execute()
