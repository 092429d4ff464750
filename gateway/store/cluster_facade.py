"""The Store's calls for several instances: lease, heartbeats, counters, replicated state and upload bytes."""
import asyncio
import functools

from . import cluster_queries, file_queries, job_queries
from .errors import StoreClosedError


class ClusterFacade:
    """Mixed into Store: async wrappers of cluster_queries and the replication reads (store thread)."""

    def _control(self, fn, *args):
        """Run ``fn(models, *args)`` on the control thread (the store thread when there is none)."""
        if self._m is None or self._closing:
            raise StoreClosedError("store is not open")
        if self._control_executor is None:
            return self._query(fn, *args)
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._control_executor, functools.partial(fn, self._m, *args))

    # -- the dispatcher lease and the instances (control thread) ------------------------------------

    async def acquire_lease(self, holder, holder_name, ttl, force=False):
        """Take the dispatcher lease if free or expired (``force``: always); the row with ``held``."""
        return await self._control(cluster_queries.acquire_lease, holder, holder_name, ttl, force)

    async def renew_lease(self, holder, epoch, ttl):
        """Extend the dispatcher lease this holder has; False when it is lost."""
        return await self._control(cluster_queries.renew_lease, holder, epoch, ttl)

    async def release_lease(self, holder, epoch):
        """Give the dispatcher lease up at once."""
        return await self._control(cluster_queries.release_lease, holder, epoch)

    async def read_lease(self):
        """The dispatcher lease row with the database's ``now`` (None before any instance took it)."""
        return await self._control(cluster_queries.read_lease)

    async def heartbeat(self, fields):
        """Write this instance's row; returns the database's time."""
        return await self._control(cluster_queries.heartbeat, fields)

    async def list_instances(self, within):
        """``{"now", "instances"}``: instances heard from in the last ``within`` seconds."""
        return await self._control(cluster_queries.list_instances, within)

    async def forget_instance(self, instance_id):
        """Remove an instance's row."""
        return await self._control(cluster_queries.forget_instance, instance_id)

    async def prune_instances(self, older_than):
        """Remove instances silent for longer than ``older_than`` seconds."""
        return await self._control(cluster_queries.prune_instances, older_than)

    # -- counters, worker status, node lists (store thread) -----------------------------------------

    async def raise_job_counter(self, at_least):
        """Make the cluster's job counter exist and be at least ``at_least``."""
        return await self._query(cluster_queries.raise_counter, at_least)

    async def put_worker_status(self, rows):
        """Write live worker states ``[{worker_id, status, object_info_hash, updated_at}]``."""
        return await self._query(cluster_queries.put_worker_status, rows)

    async def worker_status_since(self, since):
        """Live worker states written after ``since``."""
        return await self._query(cluster_queries.worker_status_since, since)

    async def forget_worker_status(self, worker_id):
        """Drop a deleted worker's live state."""
        return await self._query(cluster_queries.forget_worker_status, worker_id)

    async def put_object_info(self, digest, info_json, now):
        """Keep an /object_info (JSON text) under its hash."""
        return await self._query(cluster_queries.put_object_info, digest, info_json, now)

    async def get_object_info(self, digest):
        """The /object_info JSON text stored under a hash, or None."""
        return await self._query(cluster_queries.get_object_info, digest)

    # -- replication reads --------------------------------------------------------------------------

    async def changed_jobs(self, since, limit=5000):
        """Jobs (without payload) written after ``since``, oldest change first."""
        return await self._query(job_queries.changed_jobs, since, limit)

    async def queued_since(self, since, limit=5000):
        """Whole rows of queued jobs created after ``since``."""
        return await self._query(job_queries.queued_since, since, limit)

    async def get_jobs(self, prompt_ids):
        """Whole rows of these jobs."""
        return await self._query(job_queries.get_jobs, list(prompt_ids))

    async def uploads_since(self, last_id):
        """Upload rows added after row id ``last_id``."""
        return await self._query(file_queries.uploads_since, last_id)

    # -- upload bytes (MySQL: every instance reaches them) ------------------------------------------

    async def upload_blob_parts(self, sha256):
        """How many parts of an upload's bytes the store holds."""
        return await self._query(file_queries.upload_blob_parts, sha256)

    async def put_upload_blob(self, sha256, path, part_size=1024 * 1024):
        """Copy a file's bytes into the store (once per hash); True when written now."""
        return await self._query(file_queries.put_upload_blob, sha256, str(path), part_size)

    async def export_upload_blob(self, sha256, target):
        """Write an upload's stored bytes to ``target``; False when the store lacks them."""
        return await self._query(file_queries.export_upload_blob, sha256, str(target))
