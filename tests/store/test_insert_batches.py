"""Batched job inserts (insert_job without fetch): on SQLite and on MariaDB (store fixture)."""
import asyncio

import pytest

from gateway.store import DuplicateError, StoreClosedError

from .test_store import job


async def test_a_burst_of_inserts_is_stored_with_each_caller_told_its_own_outcome(store):
    rows = [job(n) for n in range(1, 201)]
    rows.append(job(7, gateway_job_id="g-dup"))  # same prompt id as row 7: refused, the others stored
    results = await asyncio.gather(*(store.insert_job(row, fetch=False) for row in rows),
                                   return_exceptions=True)
    assert all(isinstance(r, dict) and r["seq"] == n for r, n in zip(results[:200], range(1, 201)))
    assert isinstance(results[200], DuplicateError)
    listed = await store.list_jobs(limit=500)
    assert listed["total"] == 200
    assert (await store.get_job("p-007"))["gateway_job_id"] == "g-007"


async def test_later_writes_of_a_job_follow_its_batched_insert(store):
    # The update is asked for right after the insert, before it has been written: it must not be
    # applied first (it would find no row and be lost).
    inserts = [asyncio.ensure_future(store.insert_job(job(n), fetch=False)) for n in range(1, 51)]
    await asyncio.sleep(0)
    updated = store.update_job("p-050", {"state": "submitted", "worker_id": 3})
    await asyncio.gather(*inserts)
    assert await updated is True
    assert (await store.get_job("p-050"))["state"] == "submitted"


async def test_an_insert_after_close_fails_instead_of_hanging(store):
    await store.close()
    with pytest.raises(StoreClosedError):
        await asyncio.wait_for(store.insert_job(job(1), fetch=False), 5)
