"""One gateway instance in its cluster: identity, heartbeat, the dispatcher lease and the links to the others.

Any number of instances started with the same ``MYSQL_*`` (and ``REDIS_URL``) settings form a cluster.
MySQL holds the truth; one instance at a time holds the dispatcher lease (cluster/lease.py) and runs the
scheduler, the worker monitors and the sends; every instance serves every route. What one instance
changes reaches the others over Redis at once (cluster/bus.py) and from the store within a second or
so when Redis is away (cluster/sync.py). On SQLite the one process (its data folder is locked) takes the
lease at start and nothing is shared.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

from .. import __version__
from ..background import BackgroundLoop
from .bus import ClusterBus
from .lease import DispatcherLease
from .links import ClusterLinks
from .sync import StoreSync

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
GONE_AFTER_SECONDS = 3600.0  # instances silent this long leave the list


def local_address(towards: str, port: int) -> str:
    """This machine's address on the network that reaches `towards` (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((towards, port))
            address = probe.getsockname()[0]
        if not address.startswith("127."):
            return address
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return socket.gethostname()


class ClusterNode(BackgroundLoop):
    """This instance's membership: heartbeat loop, lease, bus and store sync; switches the gateway's role."""

    def __init__(self, gateway):
        self.gw = gateway
        settings = gateway.settings
        self.instance_id = uuid.uuid4().hex
        self.started_at = time.time()
        self.clustered = settings.database_kind == "mysql"  # SQLite: one process per data folder
        self.name = settings.instance_name or socket.gethostname()
        self.address: str | None = None
        self.instances: list[dict] = []  # heard from recently (self included)
        self.lease_row: dict | None = None
        self.db_now_offset = 0.0  # database clock minus ours, from the last heartbeat
        self.bus = ClusterBus(settings.redis_url, settings.redis_prefix, self.instance_id) \
            if self.clustered and settings.redis_url else None
        self.lease = DispatcherLease(gateway.store, self.instance_id, self.name,
                                     lambda: self.gw.settings.lease_seconds, not self.clustered,
                                     self._gained, self._lost)
        self.links = ClusterLinks(gateway, self)
        self.sync = StoreSync(gateway, self)
        self._role_lock = asyncio.Lock()
        self._stepping_down: asyncio.Task | None = None
        self._known_leader: tuple | None = None

    # ----- state for the API and the other parts ---------------------------------------------------
    @property
    def role(self) -> str:
        """dispatcher or follower."""
        return "dispatcher" if self.gw.jobs.dispatching else "follower"

    @property
    def peers(self) -> int:
        """Other instances heard from within a few heartbeats."""
        return sum(1 for i in self.instances if i["id"] != self.instance_id and i.get("alive"))

    def dispatcher_address(self) -> str | None:
        """The address of the instance that holds the lease (None when none does, or it is this one)."""
        row = self.lease_row
        if not row or row.get("holder") in (None, self.instance_id):
            return None
        return next((i.get("address") for i in self.instances if i["id"] == row["holder"]), None)

    def describe(self) -> dict:
        """The cluster as the admin page shows it."""
        lease = self.lease_row or {}
        now = time.time() + self.db_now_offset
        return {
            "mode": "cluster" if self.clustered else "single",
            "instance_id": self.instance_id, "name": self.name, "role": self.role,
            "bus": {"configured": self.bus is not None, "up": bool(self.bus and self.bus.up)},
            "lease": {"holder": lease.get("holder"), "holder_name": lease.get("holder_name"),
                      "epoch": lease.get("epoch"), "expires_in": round(max(0.0, (lease.get("expires_at") or 0)
                                                                           - now), 2) if lease else None,
                      "seconds": self.gw.settings.lease_seconds},
            "instances": [{**i, "leader": i["id"] == lease.get("holder"),
                           "self": i["id"] == self.instance_id,
                           "heartbeat_age": round(max(0.0, now - i["heartbeat_at"]), 2),
                           "uptime_seconds": round(max(0.0, now - i["started_at"]), 1)} for i in self.instances],
        }

    # ----- life cycle -------------------------------------------------------------------------------
    async def start(self, port: int) -> None:
        """Join: a single instance takes the lease at once; in a cluster, load the replica and compete."""
        settings = self.gw.settings
        if settings.advertise_url:
            self.address = settings.advertise_url.rstrip("/")
        else:
            host = settings.host
            if host in ("", "0.0.0.0", "::", "*"):
                host = local_address(settings.mysql_host if self.clustered else "192.0.2.1", settings.mysql_port)
            self.address = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        if not settings.instance_name:
            self.name = f"{socket.gethostname()}:{port}"
            self.lease.holder_name = self.name
        if not self.clustered:
            await self.lease.take_now()
            self.lease.start()
            return
        self.links.attach()
        await self.gw.jobs.load(recover=False)
        await self._heartbeat()
        if self.bus is not None:
            await self.bus.start(self.links.handlers(), self._bus_up)
        self.sync.start()
        self.lease.start()
        super().start()
        logger.info("cluster member %s (%s) at %s; Redis %s", self.name, self.instance_id[:8], self.address,
                    "configured" if self.bus else "not configured (changes spread through MySQL)")

    async def stop(self) -> None:
        """Hand the lease over at once, stop every loop, leave the instance list."""
        await self.lease.release()
        await self.lease.stop()
        if self._stepping_down is not None:
            await self._stepping_down  # the hand-over under way ends first
        await super().stop()
        await self.sync.stop()
        if self.bus is not None:
            await self.bus.stop()
        if self.clustered:
            try:
                await self.gw.store.forget_instance(self.instance_id)
            except Exception as exc:
                logger.debug("could not leave the instance list: %s", exc)

    def _bus_up(self) -> None:
        """Subscribed to Redis (again): say hello, and read what was missed meanwhile from the store."""
        self.links.notice("hello")
        self.sync.resync_soon()

    async def refresh_instances(self) -> None:
        """Read the instance list now (a new instance said hello)."""
        try:
            await self._heartbeat()
        except Exception as exc:
            logger.debug("instance list not read: %s", exc)

    async def _loop(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._heartbeat()
                beats += 1
                if beats % 600 == 0:
                    await self.gw.store.prune_instances(GONE_AFTER_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: keep the last picture, try again
                logger.debug("heartbeat failed: %s", exc)

    async def _heartbeat(self) -> None:
        store = self.gw.store
        db_now = await store.heartbeat({"id": self.instance_id, "name": self.name, "address": self.address,
                                        "version": __version__, "role": self.role, "pid": os.getpid(),
                                        "started_at": self.started_at})
        self.db_now_offset = db_now - time.time()
        within = 3 * HEARTBEAT_SECONDS + self.gw.settings.lease_seconds
        listing = await store.list_instances(GONE_AFTER_SECONDS)
        self.instances = [{**i, "alive": listing["now"] - i["heartbeat_at"] <= within}
                          for i in listing["instances"]]
        self.note_lease(await store.read_lease())

    def note_lease(self, row: dict | None) -> None:
        """Remember who holds the lease; a new holder is a takeover, told to the admin page."""
        self.lease_row = row
        if not row or not row.get("holder"):
            return
        key = (row["holder"], row["epoch"])
        if self._known_leader is not None and key != self._known_leader:
            logger.info("dispatcher is now %s (epoch %d)", row.get("holder_name"), row["epoch"])
            self.gw.events.emit_cluster({"event": "takeover", "holder": row["holder"],
                                         "holder_name": row.get("holder_name"), "epoch": row["epoch"]})
        self._known_leader = key

    # ----- role changes ---------------------------------------------------------------------------
    async def _gained(self, epoch: int) -> None:
        async with self._role_lock:
            if self.lease.epoch != epoch:
                return  # lost again while waiting
            await self.gw.start_dispatching(epoch)
        self.note_lease({"holder": self.instance_id, "holder_name": self.name, "epoch": epoch,
                         "expires_at": time.time() + self.db_now_offset + self.gw.settings.lease_seconds})
        self.links.announce_takeover(epoch)

    def _lost(self, reason: str) -> None:
        # Synchronously: from this moment nothing is sent or written under the old epoch.
        self.gw.jobs.fence = None
        self._stepping_down = asyncio.ensure_future(self._step_down())

    async def _step_down(self) -> None:
        async with self._role_lock:
            await self.gw.stop_dispatching()
