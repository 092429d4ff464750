"""The store's cluster calls, on SQLite and on MariaDB: lease and fencing, counters, instances, replication."""
import asyncio

import pymysql
import pytest

from gateway.store import FencedError, Store

from .services import temporary_mysql_database
from .test_store import job


async def test_lease_is_held_by_one_and_taken_over_after_expiry(store):
    first = await store.acquire_lease("a", "A", 0.4)
    assert first["held"] and first["holder"] == "a" and first["epoch"] == 1
    assert first["expires_at"] > first["now"]
    second = await store.acquire_lease("b", "B", 0.4)
    assert not second["held"] and second["holder"] == "a"
    assert await store.renew_lease("a", 1, 0.4)
    await asyncio.sleep(0.6)
    assert not await store.renew_lease("a", 1, 0.4), "an expired lease cannot be renewed"
    taken = await store.acquire_lease("b", "B", 5)
    assert taken["held"] and taken["epoch"] == 2 and taken["holder_name"] == "B"
    assert (await store.read_lease())["holder"] == "b"
    assert not await store.release_lease("a", 1)
    assert await store.release_lease("b", 2)
    again = await store.acquire_lease("a", "A", 5)
    assert again["held"] and again["epoch"] == 3, "a released lease is free at once"
    forced = await store.acquire_lease("c", "C", 5, force=True)
    assert forced["held"] and forced["epoch"] == 4


async def test_dispatcher_writes_are_fenced_by_the_epoch(store):
    lease = await store.acquire_lease("a", "A", 5)
    epoch = lease["epoch"]
    await store.insert_job(job(1, state="submitted", worker_id=1), fetch=False, fence=epoch)
    assert await store.update_job("p-001", {"state": "running"}, fence=epoch)
    taken = await store.acquire_lease("b", "B", 5, force=True)
    with pytest.raises(FencedError):
        await store.update_job("p-001", {"state": "done"}, fence=epoch)
    with pytest.raises(FencedError):
        await store.insert_job(job(2, state="submitted", worker_id=1), fetch=False, fence=epoch)
    assert (await store.get_job("p-001"))["state"] == "running"
    assert await store.get_job("p-002") is None
    assert await store.update_job("p-001", {"state": "done"}, fence=taken["epoch"])
    assert not await store.update_job("missing", {"state": "done"}, fence=taken["epoch"])
    assert await store.update_job("p-001", {"priority": 3}), "writes without a fence are not checked"


async def test_job_counter_orders_jobs_of_every_instance(store):
    await store.raise_job_counter(41)
    await store.raise_job_counter(7)  # never lowers it
    plain = await store.insert_job(job(0, prompt_id="a", gateway_job_id="ga", number=None), fetch=False,
                                   seq_from="plain")
    front = await store.insert_job(job(0, prompt_id="b", gateway_job_id="gb", number=None), fetch=False,
                                   seq_from="front")
    explicit = await store.insert_job(job(0, prompt_id="c", gateway_job_id="gc", number=2.5), fetch=False,
                                      seq_from="plain")
    assert plain == {"seq": 42, "number": 42.0}
    assert front == {"seq": 43, "number": -43.0}
    assert explicit == {"seq": 44, "number": 2.5}
    assert (await store.get_job("b"))["seq"] == 43


async def test_instances_heartbeat_and_listing(store):
    now = await store.heartbeat({"id": "i1", "name": "one", "address": "http://a:1", "version": "1",
                                 "role": "leader", "pid": 1, "started_at": 1.0})
    await store.heartbeat({"id": "i2", "name": "two", "address": None, "version": "1", "role": "follower",
                           "pid": 2, "started_at": 2.0})
    listed = await store.list_instances(60)
    assert [i["name"] for i in listed["instances"]] == ["one", "two"]
    assert listed["now"] >= now
    await store.forget_instance("i2")
    assert [i["id"] for i in (await store.list_instances(60))["instances"]] == ["i1"]
    assert await store.prune_instances(3600) == 0


async def test_worker_status_and_object_info(store):
    await store.put_worker_status([{"worker_id": 1, "status": {"status": "online", "queue_remaining": 2},
                                    "object_info_hash": "h" * 64, "updated_at": 10.0},
                                   {"worker_id": 2, "status": {"status": "offline"}, "object_info_hash": None,
                                    "updated_at": 20.0}])
    assert [r["worker_id"] for r in await store.worker_status_since(15.0)] == [2]
    await store.put_worker_status([{"worker_id": 1, "status": {"status": "offline"}, "object_info_hash": None,
                                    "updated_at": 30.0}])
    rows = {r["worker_id"]: r for r in await store.worker_status_since(0)}
    assert rows[1]["status"] == {"status": "offline"}
    await store.forget_worker_status(1)
    assert [r["worker_id"] for r in await store.worker_status_since(0)] == [2]
    text = '{"EmptyImage": {"input": {"required": {}}}, "note": "' + "x" * 100_000 + '"}'
    await store.put_object_info("d" * 64, text, 1.0)
    await store.put_object_info("d" * 64, "ignored: same hash", 2.0)
    assert await store.get_object_info("d" * 64) == text
    assert await store.get_object_info("e" * 64) is None


async def test_replication_reads(store):
    for n in range(1, 6):
        await store.insert_job(job(n, state="queued" if n % 2 else "running", updated_at=100.0 + n,
                                   created_at=100.0 + n), fetch=False)
    changed = await store.changed_jobs(102.5)
    assert [r["prompt_id"] for r in changed] == ["p-003", "p-004", "p-005"]
    assert "body" not in changed[0] and "history" not in changed[0]
    queued = await store.queued_since(101.5)
    assert [r["prompt_id"] for r in queued] == ["p-003", "p-005"] and queued[0]["body"]["prompt"]
    assert {r["prompt_id"] for r in await store.get_jobs(["p-001", "nope"])} == {"p-001"}
    first = await store.add_upload({"sha256": "a" * 64, "type": "input", "subfolder": "", "name": "a.png",
                                    "size": 1, "created_at": 1.0})
    await store.add_upload({"sha256": "b" * 64, "type": "input", "subfolder": "", "name": "b.png", "size": 1,
                            "created_at": 1.0})
    assert [r["name"] for r in await store.uploads_since(first["id"])] == ["b.png"]


async def test_upload_bytes_in_parts(store, tmp_path):
    source = tmp_path / "src.bin"
    data = bytes(range(256)) * 5000  # 1.28 MB: two parts and a bit
    source.write_bytes(data)
    assert await store.put_upload_blob("f" * 64, source, part_size=512 * 1024)
    assert not await store.put_upload_blob("f" * 64, source, part_size=512 * 1024), "kept once per hash"
    assert await store.upload_blob_parts("f" * 64) == 3
    target = tmp_path / "out.bin"
    assert await store.export_upload_blob("f" * 64, target)
    assert target.read_bytes() == data
    assert not await store.export_upload_blob("0" * 64, tmp_path / "none.bin")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert await store.put_upload_blob("0" * 64, empty)
    assert await store.export_upload_blob("0" * 64, tmp_path / "empty-out.bin")
    assert (tmp_path / "empty-out.bin").read_bytes() == b""


async def test_two_stores_on_one_mariadb_share_lease_and_counter():
    with temporary_mysql_database() as params:
        one, two = Store("mysql", mysql=params), Store("mysql", mysql=params)
        await one.open()
        await two.open()
        try:
            await one.raise_job_counter(0)
            results = await asyncio.gather(*(s.acquire_lease(name, name, 5) for s, name in ((one, "one"),
                                                                                            (two, "two"))))
            assert sorted(r["held"] for r in results) == [False, True]
            seqs = await asyncio.gather(*(
                s.insert_job(job(0, prompt_id=f"{s is one}-{n}", gateway_job_id=f"g{s is one}-{n}", number=None),
                             fetch=False, seq_from="plain")
                for n in range(20) for s in (one, two)))
            assert sorted(r["seq"] for r in seqs) == list(range(1, 41))
        finally:
            await one.close()
            await two.close()


async def test_tables_of_an_older_gateway_get_the_new_columns():
    with temporary_mysql_database() as params:
        conn = pymysql.connect(autocommit=True, **params)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE jobs (prompt_id VARCHAR(36) NOT NULL PRIMARY KEY, gateway_job_id VARCHAR(36) "
                        "NOT NULL UNIQUE, seq BIGINT NOT NULL, client_id VARCHAR(255) NULL, priority INT NOT NULL "
                        "DEFAULT 0, number DOUBLE NULL, state VARCHAR(16) NOT NULL, worker_id INT NULL, attempts "
                        "INT NOT NULL DEFAULT 0, body LONGTEXT NOT NULL, history LONGTEXT NULL, error TEXT NULL, "
                        "progress TEXT NULL, webhook VARCHAR(1024) NULL, created_at DOUBLE NOT NULL, submitted_at "
                        "DOUBLE NULL, started_at DOUBLE NULL, finished_at DOUBLE NULL, updated_at DOUBLE NOT NULL)")
            cur.execute("INSERT INTO jobs (prompt_id, gateway_job_id, seq, state, body, created_at, updated_at) "
                        "VALUES ('old', 'g-old', 1, 'done', '{}', 1, 1)")
        store = Store("mysql", mysql=params)
        await store.open()
        try:
            assert (await store.get_job("old"))["epoch"] is None
            with conn.cursor() as cur:
                cur.execute("SHOW INDEX FROM jobs WHERE Key_name = 'jobs_updated_at'")
                assert cur.fetchall(), "the index other instances poll with was added"
        finally:
            await store.close()
            conn.close()
