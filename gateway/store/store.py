"""``Store``: the async facade over the database that the gateway uses.

Every blocking Peewee call runs on ONE dedicated thread (``_run``): SQLite
connections belong to the thread that opened them, and a single thread also
serialises writes. Methods return plain dicts/lists, never model instances.
Writes are committed (autocommit or one transaction) before they return.
"""
import asyncio
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from . import editor_queries, file_queries, job_queries, webhook_queries, worker_queries
from .cluster_facade import ClusterFacade
from .database import open_database
from .checkpoints import WalCheckpointer
from .errors import StoreClosedError

logger = logging.getLogger(__name__)


def _nothing():
    return None


class Store(ClusterFacade):
    """Async access to workers, jobs, uploads, outputs and settings (cluster calls: ClusterFacade)."""

    def __init__(self, kind="sqlite", *, sqlite_path=None, mysql=None):
        self.kind = kind
        self._sqlite_path = sqlite_path
        self._mysql = dict(mysql or {})
        self._executor = None
        self._control_executor = None
        self._checkpointer = None
        self._db = None
        self._m = None
        self._closing = False
        # Rows of insert_job(fetch=False) waiting for the store thread (see insert_job).
        self._batch_lock = threading.Lock()
        self._insert_batch = []
        self._batch_queued = False

    @classmethod
    def from_settings(cls, kind, sqlite_path=None, mysql=None):
        """Build a store from config values (kind: sqlite, memory, mysql)."""
        return cls(kind, sqlite_path=sqlite_path, mysql=mysql)

    @property
    def is_open(self):
        """True between a successful open() and close()."""
        return self._m is not None and not self._closing

    async def open(self):
        """Start the store thread, connect and create missing tables."""
        if self._executor is not None:
            return
        self._closing = False
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="gateway-store")
        try:
            self._db, self._m = await self._run(
                open_database, self.kind, sqlite_path=self._sqlite_path,
                mysql=self._mysql)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        if self.kind == "sqlite" and self._sqlite_path and self._sqlite_path != ":memory:":
            self._checkpointer = WalCheckpointer(self._sqlite_path)
            self._checkpointer.start()
        if self.kind == "mysql":
            # Lease renewals and heartbeats get a thread (and, through Peewee, a connection) of their own,
            # so a long query on the store thread never makes the dispatcher lose its lease. Not on SQLite:
            # there the one process's lease never lapses, and a second writing connection would make a
            # read-then-write transaction on the store thread fail with "database is locked".
            self._control_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-control")

    async def close(self):
        """Finish pending calls, close the connection and stop the thread."""
        if self._executor is None or self._closing:
            return
        self._closing = True
        executor, db = self._executor, self._db
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, checkpointer.stop)
        control, self._control_executor = self._control_executor, None
        loop = asyncio.get_running_loop()
        try:
            if control is not None and db is not None:
                await loop.run_in_executor(control, db.close)
            if db is not None:
                # Queued behind every pending call (one thread, FIFO).
                await loop.run_in_executor(executor, db.close)
        finally:
            if control is not None:
                control.shutdown(wait=True)
            executor.shutdown(wait=True)
            self._executor = self._db = self._m = None
            self._closing = False

    def _run(self, fn, *args, **kwargs):
        """Queue a blocking ``fn`` on the store thread now; await the returned future for its result."""
        if self._executor is None or self._closing:
            raise StoreClosedError("store is not open")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(
            self._executor, functools.partial(fn, *args, **kwargs))

    def after_writes(self):
        """A future that is done once every call queued before it has run (one thread, in order)."""
        return self._run(_nothing)

    def _query(self, fn, *args, **kwargs):
        if self._m is None:
            raise StoreClosedError("store is not open")
        return self._run(fn, self._m, *args, **kwargs)

    # -- workers ---------------------------------------------------------

    async def list_workers(self):
        """All workers (dicts, including auth_password), ordered by id."""
        return await self._query(worker_queries.list_workers)

    async def get_worker(self, worker_id):
        """One worker dict, or None."""
        return await self._query(worker_queries.get_worker, worker_id)

    async def add_worker(self, fields):
        """Insert a worker, return it; DuplicateError if the url exists."""
        return await self._query(worker_queries.add_worker, fields)

    async def update_worker(self, worker_id, fields):
        """Update a worker, return it (None if missing); DuplicateError."""
        return await self._query(worker_queries.update_worker, worker_id,
                                 fields)

    async def delete_worker(self, worker_id):
        """Delete a worker; True when it existed."""
        return await self._query(worker_queries.delete_worker, worker_id)

    # -- jobs ------------------------------------------------------------

    async def insert_job(self, fields, fetch=True, fence=None, seq_from=None):
        """Insert a job (durable on return) and return it (without fetch: only ``{seq, number}``);
        DuplicateError, FencedError.

        ``seq_from``/``fence``: see job_queries.insert_job. Without ``fetch`` the row joins the inserts
        that arrive while the store thread is busy and is written with them in one transaction: during
        a burst of submissions one commit then serves many jobs, and the loop hands the thread one call
        instead of one per job. Each caller still returns only once its row is committed.
        """
        if fetch:
            return await self._query(job_queries.insert_job, fields, fetch, fence, seq_from)
        if self._m is None or self._closing:
            raise StoreClosedError("store is not open")
        future = asyncio.get_running_loop().create_future()
        with self._batch_lock:
            self._insert_batch.append(((fields, fence, seq_from), future))
            start = not self._batch_queued
            self._batch_queued = True
        if start:
            try:
                self._query(self._insert_queued).add_done_callback(self._settle_batch)
            except Exception as exc:
                self._fail_queued_inserts(exc)
        return await future

    def _insert_queued(self, m):
        """On the store thread: insert every row queued so far in one transaction."""
        with self._batch_lock:
            batch, self._insert_batch = self._insert_batch, []
            self._batch_queued = False
        futures = [future for _, future in batch]
        try:
            results = job_queries.insert_jobs(m, [item for item, _ in batch])
        except Exception as exc:
            return futures, [exc] * len(futures)
        return futures, results

    def _settle_batch(self, done):
        """On the loop: hand each caller of a batched insert its own result or error."""
        if done.cancelled() or done.exception() is not None:  # the thread never ran it (store closed)
            self._fail_queued_inserts(StoreClosedError("store closed before the job was written"))
            return
        for future, result in zip(*done.result()):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _fail_queued_inserts(self, exc):
        with self._batch_lock:
            batch, self._insert_batch = self._insert_batch, []
            self._batch_queued = False
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    def update_job(self, prompt_id, fields, fence=None):
        """Queue an update of columns of a job at once; await the result: True when it exists.

        Not a coroutine, so the write is queued (in order) the moment it is asked for, and a caller
        that does not wait for it creates no task. ``fence``: see job_queries.update_job.
        """
        return self._query(job_queries.update_job, prompt_id, fields, fence)

    async def delete_job(self, prompt_id, fence=None):
        """Delete a job that was never accepted; True when it existed. ``fence``: see job_queries.delete_job."""
        return await self._query(job_queries.delete_job, prompt_id, fence)

    async def add_job_events(self, rows, fence=None):
        """Append steps to jobs' timelines; ``fence``: see job_queries.add_job_events."""
        return await self._query(job_queries.add_job_events, rows, fence)

    async def job_events(self, prompt_id, limit=200):
        """A job's timeline, oldest first."""
        return await self._query(job_queries.job_events, prompt_id, limit)

    async def get_job(self, prompt_id):
        """One job dict (with body/history), or None."""
        return await self._query(job_queries.get_job, prompt_id)

    async def get_job_by_gateway_id(self, gateway_job_id):
        """The job with this gateway_job_id, or None."""
        return await self._query(job_queries.get_job_by_gateway_id,
                                 gateway_job_id)

    async def load_unfinished_jobs(self, body_as_text=False):
        """Queued/submitted/running jobs ordered by seq (for restart); see job_queries."""
        return await self._query(job_queries.load_unfinished_jobs, body_as_text)

    async def max_job_seq(self):
        """Highest stored seq, 0 when empty."""
        return await self._query(job_queries.max_job_seq)

    async def list_jobs(self, state=None, worker_id=None, client_id=None,
                        since=None, until=None, limit=50, offset=0,
                        include_payload=False, has_history=False, id_prefix=None):
        """``{"items", "total"}`` newest first; state may be a list; id_prefix: see job_queries.list_jobs."""
        return await self._query(
            job_queries.list_jobs, state=state, worker_id=worker_id,
            client_id=client_id, since=since, until=until, limit=limit,
            offset=offset, include_payload=include_payload,
            has_history=has_history, id_prefix=id_prefix)

    async def count_jobs_by_state(self):
        """``{state: count}`` for all five states."""
        return await self._query(job_queries.count_jobs_by_state)

    async def job_stats(self, since, until=None):
        """Per-minute ``{minute, finished, failed, mean_run_seconds}``."""
        return await self._query(job_queries.job_stats, since, until)

    async def job_prompts(self, prompt_ids):
        """``{prompt_id: workflow}`` of these jobs."""
        return await self._query(job_queries.job_prompts, prompt_ids)

    async def worker_stats(self, since, until=None, buckets=12):
        """Per worker ``{done, failed, run_seconds, runs, per_bucket}`` of jobs finished in the window."""
        return await self._query(job_queries.worker_stats, since, until, buckets)

    async def prune_jobs(self, keep_last):
        """Delete finished jobs beyond the newest ``keep_last``; count."""
        return await self._query(job_queries.prune_jobs, keep_last)

    # -- uploads, outputs, settings ---------------------------------------

    async def add_upload(self, fields):
        """Record an upload (replaces same type/subfolder/name); return it."""
        return await self._query(file_queries.add_upload, fields)

    async def find_upload(self, type_, subfolder, name):
        """The upload at type/subfolder/name, or None."""
        return await self._query(file_queries.find_upload, type_, subfolder,
                                 name)

    async def list_uploads(self):
        """Every upload row, oldest first."""
        return await self._query(file_queries.list_uploads)

    async def find_upload_by_hash(self, sha256):
        """The newest upload with this sha256, or None."""
        return await self._query(file_queries.find_upload_by_hash, sha256)

    async def add_outputs(self, prompt_id, worker_id, files):
        """Record output files ``[{type, subfolder, filename}]``; count."""
        return await self._query(file_queries.add_outputs, prompt_id,
                                 worker_id, files)

    async def find_output(self, filename, subfolder, type_):
        """``{prompt_id, worker_id}`` of the newest writer, or None."""
        return await self._query(file_queries.find_output, filename,
                                 subfolder, type_)

    async def get_settings(self):
        """All settings as a dict."""
        return await self._query(file_queries.get_settings)

    async def set_settings(self, values):
        """Upsert settings; a None value deletes that key."""
        return await self._query(file_queries.set_settings, values)

    # -- webhook outbox -----------------------------------------------------

    async def add_webhook_delivery(self, fields):
        """Queue a webhook notification durably; returns its id."""
        return await self._query(webhook_queries.add_delivery, fields)

    async def due_webhook_deliveries(self, until, limit=50):
        """Notifications due by ``until``, earliest first."""
        return await self._query(webhook_queries.due_deliveries, until, limit)

    async def next_webhook_due_at(self):
        """When the next notification is due, or None."""
        return await self._query(webhook_queries.next_due_at)

    async def retry_webhook_delivery(self, delivery_id, attempts, next_attempt_at, error):
        """Record a failed try."""
        return await self._query(webhook_queries.retry_delivery, delivery_id, attempts, next_attempt_at, error)

    async def delete_webhook_delivery(self, delivery_id):
        """Remove a delivered (or abandoned) notification."""
        return await self._query(webhook_queries.delete_delivery, delivery_id)
    # -- the ComfyUI editor's user data ------------------------------------

    async def editor_get(self, user, path):
        """The file or folder row at path (content included), or None."""
        return await self._query(editor_queries.get_file, user, path)

    async def editor_has_data(self, user):
        """True when the user has stored anything."""
        return await self._query(editor_queries.has_data, user)

    async def editor_tree(self, user, folder):
        """Info rows of everything inside folder ("" for the root)."""
        return await self._query(editor_queries.list_tree, user, folder)

    async def editor_put(self, user, path, content, overwrite):
        """Write a file; ``(outcome, info)`` (see editor_queries.put_file)."""
        return await self._query(editor_queries.put_file, user, path, content,
                                 overwrite)

    async def editor_delete(self, user, path):
        """Delete a file: "ok", "missing" or "is_dir"."""
        return await self._query(editor_queries.delete_file, user, path)

    async def editor_move(self, user, source, dest, overwrite):
        """Move a file or folder; ``(outcome, info)``."""
        return await self._query(editor_queries.move, user, source, dest,
                                 overwrite)

    async def editor_merge_json(self, user, path, changes):
        """Update the JSON object stored at path with changes; the result."""
        return await self._query(editor_queries.merge_json, user, path,
                                 changes)
