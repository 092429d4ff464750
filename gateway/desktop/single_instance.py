"""One gateway per data folder: an OS file lock (filelock), plus a small file telling a second launch where the
first runs."""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from pathlib import Path

import filelock

logger = logging.getLogger(__name__)

LOCK_NAME = "gateway.lock"
INFO_NAME = "instance.json"


def probe_gateway(url: str, timeout: float = 1.0) -> dict | None:
    """The /healthz answer of a comfyui-gateway at url (http://host:port/), or None when none answers."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(body, dict) and body.get("status") == "ok" and "version" in body:
        return body
    return None


class InstanceLock:
    """Held for the life of the process; the OS drops it when the process dies, so it is never stale."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.lock_path = self.data_dir / LOCK_NAME
        self.info_path = self.data_dir / INFO_NAME
        self._lock: filelock.BaseFileLock | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._lock is not None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.lock_path, timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            return False
        self._lock = lock
        return True

    def publish(self, url: str) -> None:
        """Tell later launches where this instance serves its admin page."""
        info = {"pid": os.getpid(), "url": url, "started_at": time.time()}
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, self.info_path)

    def release(self) -> None:
        """Forget the published URL and drop the lock."""
        if self._lock is None:
            return
        try:
            self.info_path.unlink()
        except OSError:
            pass
        self._lock.release()
        self._lock = None

    def published_url(self) -> str | None:
        """The URL the running instance published, if any."""
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        url = info.get("url") if isinstance(info, dict) else None
        return url if isinstance(url, str) else None

    def running_url(self, wait: float = 15.0) -> str | None:
        """The URL of the instance holding the lock once it answers /healthz (it may still be starting)."""
        deadline = time.monotonic() + wait
        while True:
            url = self.published_url()
            if url and probe_gateway(url):
                return url
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
