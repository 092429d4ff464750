"""The Store suite; every test runs on SQLite and on MariaDB (store fixture)."""
import asyncio
import threading

import pytest

from gateway.store import DuplicateError, Store, StoreClosedError

BODY = {"prompt": {"3": {"class_type": "KSampler", "inputs": {"seed": 1}}},
        "extra_data": {"note": "ünïcødé 🎨"}}


def job(n, **over):
    """A job row with seq n (ids derived from n)."""
    row = {"prompt_id": "p-%03d" % n, "gateway_job_id": "g-%03d" % n,
           "seq": n, "state": "queued", "body": BODY,
           "created_at": 1000.0 + n, "updated_at": 1000.0 + n}
    row.update(over)
    return row


async def test_worker_crud(store):
    w = await store.add_worker({"url": "http://w1:8188", "name": "one",
                                "weight": 2.5, "auth_username": "u",
                                "auth_password": "p"})
    assert w["id"] > 0 and w["name"] == "one" and w["weight"] == 2.5
    assert w["enabled"] is True and w["draining"] is False
    assert w["max_queue"] == 1 and w["auth_password"] == "p"
    assert isinstance(w["created_at"], float)
    w2 = await store.add_worker({"url": "http://w2:8188"})
    assert w2["name"] == "http://w2:8188" and w2["auth_username"] is None
    assert [x["id"] for x in await store.list_workers()] == [w["id"], w2["id"]]

    changed = await store.update_worker(w["id"], {"enabled": False,
                                                  "draining": True,
                                                  "max_queue": 3})
    assert changed["enabled"] is False and changed["draining"] is True
    assert changed["max_queue"] == 3 and changed["url"] == "http://w1:8188"
    assert changed["updated_at"] >= w["updated_at"]
    assert await store.get_worker(w["id"]) == changed
    assert await store.update_worker(9999, {"name": "x"}) is None

    assert await store.delete_worker(w2["id"]) is True
    assert await store.delete_worker(w2["id"]) is False
    assert await store.get_worker(w2["id"]) is None


async def test_worker_duplicate_url_and_bad_fields(store):
    w = await store.add_worker({"url": "http://dup:8188"})
    with pytest.raises(DuplicateError):
        await store.add_worker({"url": "http://dup:8188", "name": "again"})
    other = await store.add_worker({"url": "http://other:8188"})
    with pytest.raises(DuplicateError):
        await store.update_worker(other["id"], {"url": "http://dup:8188"})
    with pytest.raises(ValueError, match="colour"):
        await store.add_worker({"url": "http://x", "colour": "red"})
    assert len(await store.list_workers()) == 2
    assert (await store.get_worker(w["id"]))["url"] == "http://dup:8188"


async def test_job_insert_update_get(store):
    stored = await store.insert_job(job(1, client_id="c1", priority=5,
                                        number=-1.5,
                                        webhook="http://hook/x"))
    assert stored["body"] == BODY and stored["state"] == "queued"
    assert stored["priority"] == 5 and stored["number"] == -1.5
    assert stored["attempts"] == 0 and stored["history"] is None
    assert await store.get_job("p-001") == stored
    assert await store.get_job_by_gateway_id("g-001") == stored
    assert await store.get_job("nope") is None
    assert await store.get_job_by_gateway_id("nope") is None

    history = {"outputs": {"9": {"images": [{"filename": "a.png"}]}},
               "status": {"status_str": "success", "completed": True}}
    assert await store.update_job("p-001", {
        "state": "done", "worker_id": 7, "attempts": 1, "history": history,
        "progress": {"value": 20, "max": 20}, "started_at": 1010.0,
        "finished_at": 1012.5}) is True
    got = await store.get_job("p-001")
    assert got["history"] == history and got["state"] == "done"
    assert got["worker_id"] == 7 and got["finished_at"] == 1012.5
    assert got["progress"] == {"value": 20, "max": 20}
    assert got["updated_at"] > stored["updated_at"]
    # Same values again still counts as "exists" (MySQL FOUND_ROWS).
    assert await store.update_job("p-001", {"state": "done",
                                            "updated_at": 5.0}) is True
    assert await store.update_job("p-001", {"state": "done",
                                            "updated_at": 5.0}) is True
    assert await store.update_job("missing", {"state": "done"}) is False
    await store.update_job("p-001", {"error": {"type": "x", "message": "y"}})
    assert (await store.get_job("p-001"))["error"] == {"type": "x",
                                                       "message": "y"}


async def test_job_duplicates(store):
    await store.insert_job(job(1))
    with pytest.raises(DuplicateError):
        await store.insert_job(job(1, gateway_job_id="g-other"))
    with pytest.raises(DuplicateError):
        await store.insert_job(job(2, gateway_job_id="g-001"))
    with pytest.raises(ValueError):
        await store.insert_job(job(3, bogus=1))


async def test_load_unfinished_jobs_in_seq_order(store):
    states = {5: "running", 2: "queued", 9: "done", 1: "submitted",
              7: "failed", 3: "queued"}
    for n, state in states.items():
        await store.insert_job(job(n, state=state))
    rows = await store.load_unfinished_jobs()
    assert [r["seq"] for r in rows] == [1, 2, 3, 5]
    assert rows[0]["body"] == BODY
    assert await store.max_job_seq() == 9


async def test_max_job_seq_empty(store):
    assert await store.max_job_seq() == 0


async def test_list_jobs_filters_paging_newest_first(store):
    await store.insert_job(job(1, state="done", worker_id=1, client_id="a"))
    await store.insert_job(job(2, state="failed", worker_id=2,
                               client_id="b"))
    await store.insert_job(job(3, state="queued", client_id="a"))
    await store.insert_job(job(4, state="running", worker_id=1))
    # Same created_at as job 4: seq breaks the tie.
    await store.insert_job(job(5, state="done", worker_id=1, client_id="a",
                               created_at=1004.0))
    await store.insert_job(job(6, state="done", worker_id=2))

    page = await store.list_jobs()
    assert page["total"] == 6
    assert [j["seq"] for j in page["items"]] == [6, 5, 4, 3, 2, 1]
    assert "body" not in page["items"][0] and "history" not in page["items"][0]
    full = await store.list_jobs(limit=1, include_payload=True)
    assert full["items"][0]["body"] == BODY

    page = await store.list_jobs(limit=2, offset=1)
    assert page["total"] == 6 and [j["seq"] for j in page["items"]] == [5, 4]
    page = await store.list_jobs(limit=10, offset=10)
    assert page == {"items": [], "total": 6}

    async def seqs(**kw):
        res = await store.list_jobs(**kw)
        assert res["total"] == len(res["items"])
        return [j["seq"] for j in res["items"]]

    assert await seqs(state="done") == [6, 5, 1]
    assert await seqs(state=["queued", "failed"]) == [3, 2]
    assert await seqs(worker_id=1) == [5, 4, 1]
    assert await seqs(client_id="a") == [5, 3, 1]
    assert await seqs(state="done", worker_id=1, client_id="a") == [5, 1]
    assert await seqs(since=1003.0) == [6, 5, 4, 3]
    assert await seqs(since=1002.0, until=1004.0) == [3, 2]
    res = await store.list_jobs(state="done", limit=1)
    assert res["total"] == 3 and [j["seq"] for j in res["items"]] == [6]


async def test_count_jobs_by_state(store):
    assert await store.count_jobs_by_state() == {
        "queued": 0, "submitted": 0, "running": 0, "done": 0, "failed": 0}
    for n, state in enumerate(["queued", "queued", "running", "done",
                               "done", "done", "failed"], 1):
        await store.insert_job(job(n, state=state))
    assert await store.count_jobs_by_state() == {
        "queued": 2, "submitted": 0, "running": 1, "done": 3, "failed": 1}


async def test_job_stats_per_minute(store):
    t = 60.0 * 30_000_000  # a minute boundary
    rows = [(1, "done", t + 1, t + 5), (2, "done", t + 14, t + 20),
            (3, "failed", t + 60, t + 70), (4, "done", None, t + 75),
            (5, "done", t - 100, t - 50),       # before since
            (6, "done", t + 190, t + 200),      # after until
            (7, "running", t + 10, None)]
    for n, state, started, finished in rows:
        await store.insert_job(job(n, state=state, started_at=started,
                                   finished_at=finished, created_at=t))
    stats = await store.job_stats(t, until=t + 180)
    assert [b["minute"] for b in stats] == [t, t + 60, t + 120, t + 180]
    assert stats[0] == {"minute": t, "finished": 2, "failed": 0,
                        "mean_run_seconds": 5.0, "mean_wait_seconds": 7.5}
    assert stats[1] == {"minute": t + 60, "finished": 1, "failed": 1,
                        "mean_run_seconds": None, "mean_wait_seconds": 60.0}
    assert stats[2]["finished"] == stats[2]["failed"] == 0
    last_hour = await store.job_stats(t, until=t + 3599)
    assert len(last_hour) == 60 and sum(b["finished"] for b in last_hour) == 4
    # An ancient "since" is capped to one day of buckets.
    day = await store.job_stats(0.0, until=t + 30)
    assert len(day) == 24 * 60 + 1 and day[-1]["minute"] == t


async def test_prune_jobs_keeps_newest_finished(store):
    for n in range(1, 7):
        await store.insert_job(job(n, state="done" if n != 2 else "queued"))
        await store.add_outputs("p-%03d" % n, 1, [{"type": "output",
                                                   "subfolder": "",
                                                   "filename": "f%d.png" % n}])
    assert await store.prune_jobs(2) == 3
    left = [j["seq"] for j in (await store.list_jobs())["items"]]
    assert left == [6, 5, 2]
    assert await store.find_output("f1.png", "", "output") is None
    assert await store.find_output("f6.png", "", "output") is not None
    assert await store.prune_jobs(10) == 0


async def test_uploads(store):
    first = await store.add_upload({"sha256": "a" * 64, "type": "input",
                                    "subfolder": "", "name": "cat.png",
                                    "size": 10, "created_at": 1.0})
    assert first["size"] == 10 and first["subfolder"] == ""
    await store.add_upload({"sha256": "a" * 64, "type": "input",
                            "subfolder": "pets", "name": "cat2.png",
                            "size": 10, "created_at": 2.0})
    assert await store.find_upload("input", "", "cat.png") == first
    assert (await store.find_upload_by_hash("a" * 64))["name"] == "cat2.png"
    assert await store.find_upload("input", "", "dog.png") is None
    assert await store.find_upload_by_hash("b" * 64) is None
    # Re-uploading the same name overwrites (ComfyUI overwrite=true).
    again = await store.add_upload({"sha256": "c" * 64, "type": "input",
                                    "name": "cat.png", "size": 20})
    assert again["sha256"] == "c" * 64 and again["size"] == 20
    assert await store.find_upload("input", "", "cat.png") == again


async def test_outputs_lookup_newest_first(store):
    files = [{"type": "output", "subfolder": "", "filename": "img_001.png"},
             {"type": "output", "subfolder": "sub", "filename": "v.mp4"}]
    assert await store.add_outputs("p-1", 3, files) == 2
    assert await store.add_outputs("p-1", 3, []) == 0
    assert await store.find_output("img_001.png", "", "output") == {
        "prompt_id": "p-1", "worker_id": 3}
    await asyncio.sleep(0.01)
    await store.add_outputs("p-2", 4, files[:1])
    assert await store.find_output("img_001.png", "", "output") == {
        "prompt_id": "p-2", "worker_id": 4}
    assert await store.find_output("v.mp4", "sub", "output") == {
        "prompt_id": "p-1", "worker_id": 3}
    assert await store.find_output("v.mp4", "", "output") is None
    assert await store.find_output("img_001.png", "", "temp") is None


async def test_settings_upsert(store):
    assert await store.get_settings() == {}
    await store.set_settings({"queue_cache_ttl": 5, "ui": {"theme": "dark"}})
    await store.set_settings({"ui": {"theme": "light", "cols": [1, 2]},
                              "name": "studio ✨"})
    assert await store.get_settings() == {
        "queue_cache_ttl": 5, "ui": {"theme": "light", "cols": [1, 2]},
        "name": "studio ✨"}
    await store.set_settings({"queue_cache_ttl": None})
    assert "queue_cache_ttl" not in await store.get_settings()


async def test_durable_across_close_and_reopen(store_config):
    st = Store(**store_config)
    await st.open()
    await st.add_worker({"url": "http://w:1"})
    await st.insert_job(job(1))
    await st.set_settings({"k": [1]})
    await st.close()
    reopened = Store(**store_config)
    await reopened.open()
    try:
        assert (await reopened.get_job("p-001"))["body"] == BODY
        assert [w["url"] for w in await reopened.list_workers()] == [
            "http://w:1"]
        assert await reopened.get_settings() == {"k": [1]}
    finally:
        await reopened.close()


async def test_close_waits_for_pending_writes(store_config):
    st = Store(**store_config)
    await st.open()
    tasks = [asyncio.create_task(st.insert_job(job(n))) for n in range(40)]
    await asyncio.sleep(0)  # every task has handed its insert to the thread
    await st.close()
    assert all(t.done() and not t.exception() for t in tasks)
    with pytest.raises(StoreClosedError):
        await st.get_job("p-001")
    reopened = Store(**store_config)
    await reopened.open()
    try:
        assert (await reopened.list_jobs())["total"] == 40
    finally:
        await reopened.close()


async def test_no_call_runs_on_the_event_loop_thread(store):
    loop_thread = threading.get_ident()
    seen = set()
    real_execute = store._db.execute_sql

    def spy(sql, params=None, *args, **kwargs):
        seen.add((threading.get_ident(), threading.current_thread().name))
        return real_execute(sql, params, *args, **kwargs)

    store._db.execute_sql = spy
    await store.add_worker({"url": "http://t:1"})
    await asyncio.gather(*(store.insert_job(job(n)) for n in range(10)))
    await store.update_job("p-001", {"state": "running"})
    await store.list_jobs(state=["running"])
    await store.count_jobs_by_state()
    await store.job_stats(0.0)
    await store.set_settings({"a": 1})
    await store.get_settings()
    await store.add_upload({"sha256": "d" * 64, "type": "input",
                            "name": "x.png", "size": 1})
    await store.add_outputs("p-001", 1, [{"filename": "o.png"}])
    await store.find_output("o.png", "", "output")
    assert seen, "the spy saw no SQL"
    assert len(seen) == 1, seen
    ident, name = seen.pop()
    assert ident != loop_thread and name.startswith("gateway-store")


async def test_memory_store_and_bad_kind():
    st = Store.from_settings("memory")
    await st.open()
    await st.insert_job(job(1))
    assert (await st.get_job("p-001"))["seq"] == 1
    await st.close()
    await st.close()  # idempotent
    with pytest.raises(ValueError):
        await Store("postgres").open()
    with pytest.raises(ValueError):
        await Store("sqlite").open()
    with pytest.raises(StoreClosedError):
        await Store("memory").list_workers()


async def test_list_jobs_by_id_prefix(store):
    for n in (1, 12, 13, 120):
        await store.insert_job(job(n))
    ids = lambda page: sorted(j["prompt_id"] for j in page["items"])  # noqa: E731
    assert ids(await store.list_jobs(id_prefix="p-01")) == ["p-012", "p-013"]
    assert ids(await store.list_jobs(id_prefix="g-12")) == ["p-120"]
    assert (await store.list_jobs(id_prefix="p-0", state="done"))["total"] == 0
    assert (await store.list_jobs(id_prefix="x"))["total"] == 0


async def test_delete_job_is_fenced(store):
    from gateway.store import FencedError

    await store.insert_job(job(1))
    await store.insert_job(job(2))
    await store.add_outputs("p-001", 1, [{"type": "output", "subfolder": "", "filename": "gone.png"}])
    assert await store.delete_job("p-001")
    assert await store.get_job("p-001") is None
    assert await store.find_output("gone.png", "", "output") is None
    assert not await store.delete_job("p-001")
    lease = await store.acquire_lease("a", "A", 30)
    assert await store.delete_job("p-002", fence=lease["epoch"])
    await store.insert_job(job(3))
    with pytest.raises(FencedError):
        await store.delete_job("p-003", fence=lease["epoch"] + 1)
    assert await store.get_job("p-003") is not None


async def test_job_events_timeline_fenced_and_pruned(store):
    from gateway.store import FencedError

    await store.insert_job(job(1, state="done"))
    await store.insert_job(job(2, state="done"))
    steps = [{"prompt_id": "p-001", "at": 10.0 + i, "kind": kind, "worker_id": 3 if i else None,
              "worker": "gpu-ü" if i else None, "detail": None} for i, kind in enumerate(("queued", "sent", "done"))]
    lease = await store.acquire_lease("a", "A", 30)
    assert await store.add_job_events(list(reversed(steps)), fence=lease["epoch"]) == 3
    got = await store.job_events("p-001")
    assert [s["kind"] for s in got] == ["queued", "sent", "done"]
    assert got[1]["worker"] == "gpu-ü" and got[1]["worker_id"] == 3
    with pytest.raises(FencedError):
        await store.add_job_events([{**steps[0], "prompt_id": "p-002"}], fence=lease["epoch"] + 1)
    assert await store.job_events("p-002") == []
    assert await store.prune_jobs(0) == 2
    assert await store.job_events("p-001") == []


async def test_worker_stats_per_worker(store):
    t = 60.0 * 30_000_000
    rows = [(1, 1, "done", t + 10, t + 20), (2, 1, "done", t + 100, t + 130), (3, 1, "failed", t + 200, t + 210),
            (4, 2, "failed", None, t + 300), (5, 2, "done", t - 500, t - 400), (6, None, "failed", None, t + 5),
            (7, 2, "running", t + 10, None)]
    for n, worker, state, started, finished in rows:
        await store.insert_job(job(n, worker_id=worker, state=state, started_at=started, finished_at=finished,
                                   created_at=t))
    stats = await store.worker_stats(t, until=t + 3600, buckets=12)
    assert set(stats) == {1, 2}
    assert stats[1] == {"done": 2, "failed": 1, "run_seconds": 50.0, "runs": 3,
                        "per_bucket": [2] + [0] * 11}
    assert stats[2] == {"done": 0, "failed": 1, "run_seconds": 0.0, "runs": 0, "per_bucket": [0] * 12}
