"""SQLite write-ahead-log checkpoints on a thread of their own, off the path of every commit.

By default SQLite checkpoints from the connection that commits once the log passes 1,000 pages: that
commit then copies the log into the database file and waits for it to reach the disk. On the gateway
the committing connection is the store thread, so every few thousand submissions one of them waited
for that (seen as bursts of half-second submit latencies while 100,000 jobs were queued at 1,000/s).
The store's connection turns automatic checkpoints off and this thread runs a PASSIVE checkpoint every
second on a connection of its own: PASSIVE never waits for, nor blocks, the writer or readers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0


class WalCheckpointer:
    """Checkpoints one SQLite file's log every ``interval`` seconds until stopped."""

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS):
        self.path = path
        self.interval = interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (a daemon: it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._run, name="gateway-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (a checkpoint under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=5)
        try:
            while not self._stop.wait(self.interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy or a disk problem: the next round tries again
                    logger.warning("store: SQLite checkpoint failed: %s", exc)
        finally:
            connection.close()
