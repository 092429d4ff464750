"""SQLite's log is checkpointed by the store's own thread, not by the commits of the store thread."""
import asyncio
import sqlite3

from gateway.store import Store

from .test_store import job


async def test_commits_leave_checkpoints_to_the_checkpoint_thread(tmp_path):
    path = str(tmp_path / "gw.sqlite3")
    store = Store("sqlite", sqlite_path=path)
    await store.open()
    try:
        setting = await store._run(lambda: store._db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0])
        assert setting == 0  # the store thread's commits never checkpoint
        await asyncio.gather(*(store.insert_job(job(n), fetch=False) for n in range(1, 3001)))
        probe = sqlite3.connect(path)
        assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for _ in range(50):  # within a few of the thread's one-second rounds
            await asyncio.sleep(0.1)
            if store._checkpointer.checkpoints >= 1:
                break
        busy, log_frames, done = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert store._checkpointer.checkpoints >= 1 and busy == 0 and done == log_frames
        assert probe.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 3000
        probe.close()
    finally:
        await store.close()
    assert store._checkpointer is None
