"""Logging: console always, plus a rotating file in the data folder, written by a thread of their own.

The event loop only formats a record and puts it on a queue; the console and file writes (and the
rotating file's size checks) happen on a listener thread. A log line per job state change then
costs the loop a few microseconds instead of several system calls, which showed in the submit
latency and the relay's tail latency.

Every record passes a redacting filter first (security.redaction): no token, password or
Authorization header reaches the console or the files, which are created with mode 0600.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
from pathlib import Path

from .security.files import open_private, private_dir
from .security.redaction import RedactingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files (the current one and each new one after a roll-over) are 0600."""

    def _open(self):
        return open_private(self.baseFilename, self.mode, encoding=self.encoding)


_listener: logging.handlers.QueueListener | None = None
_queue_handler: logging.Handler | None = None


def setup_logging(level: str, data_dir: Path | None) -> Path | None:
    """Configure the root logger; returns the log file path when one is written."""
    global _listener, _queue_handler
    stop_logging(keep_writing=False)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter(FORMAT))
    writers: list[logging.Handler] = [console]
    path = None
    if data_dir is not None:
        private_dir(data_dir)
        log_dir = data_dir / "logs"
        private_dir(log_dir)
        path = log_dir / "gateway.log"
        rotating = PrivateRotatingFileHandler(path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
        rotating.setFormatter(logging.Formatter(FORMAT))
        writers.append(rotating)
    records: queue.SimpleQueue = queue.SimpleQueue()
    _queue_handler = logging.handlers.QueueHandler(records)
    _queue_handler.addFilter(RedactingFilter())
    for writer in writers:  # records written directly (after stop_logging) are redacted too
        writer.addFilter(RedactingFilter())
    root.addHandler(_queue_handler)
    _listener = logging.handlers.QueueListener(records, *writers, respect_handler_level=True)
    _listener.start()
    return path


def stop_logging(keep_writing: bool = True) -> None:
    """Write out what is queued and stop the writer thread (at exit); with keep_writing, later records
    are written directly (late shutdown messages are not lost), else the writers are closed."""
    global _listener, _queue_handler
    if _listener is None:
        return
    root = logging.getLogger()
    root.removeHandler(_queue_handler)
    _listener.stop()  # what was queued is written first
    for handler in _listener.handlers:
        if keep_writing:
            root.addHandler(handler)
        else:
            handler.close()
    _listener = _queue_handler = None


atexit.register(stop_logging)  # runs before logging's own shutdown, which then closes the writers
