"""Helpers for the admin-page tests: synthetic job history for charts, bulk job rows for scale tests, moving
between views and screenshots."""

from __future__ import annotations

import math
import random
import time
import uuid
from pathlib import Path

from playwright.async_api import expect

from gateway.jobs.model import Job, Progress

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def job_row(seq: int, state: str, created_at: float, worker_id: int | None = None, run: float = 4.0,
            client_id: str | None = None, priority: int = 0, error: dict | None = None, wait: float = 0.5) -> dict:
    """One stored job row (Job.row()) with plausible timings for its state."""
    job = Job(prompt_id=str(uuid.uuid4()), gateway_job_id=str(uuid.uuid4()), seq=seq,
              body_data={"prompt": {}}, client_id=client_id, priority=priority, number=seq, state=state,
              worker_id=worker_id, created_at=created_at)
    if state in ("submitted", "running", "done", "failed"):
        job.submitted_at = created_at + 0.2
    if state in ("running", "done") or (state == "failed" and error and error.get("type") != "cancelled"):
        job.started_at = created_at + wait
    if state in ("done", "failed"):
        job.finished_at = created_at + wait + run
        job.error = error if state == "failed" else None
    job.progress = Progress(nodes_total=4)
    if state == "done":
        job.progress.done_nodes = {"1", "2", "3", "4"}
    return job.row()


def history_rows(worker_ids: list[int], start_seq: int, now: float | None = None, minutes: int = 58,
                 seed: int = 7) -> list[dict]:
    """Finished jobs spread over the last hour (a busy studio afternoon), for the overview charts."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    rows = []
    seq = start_seq
    for minute in range(minutes, 0, -1):
        load = 3 + int(4 * (1 + math.sin(minute / 9.0))) + rng.randint(0, 3)
        for _ in range(load):
            seq += 1
            failed = rng.random() < 0.06
            run = max(1.0, rng.gauss(8.0 + 3 * math.cos(minute / 13.0), 1.5))
            created = now - minute * 60 + rng.uniform(0, 50) - run
            rows.append(job_row(seq, "failed" if failed else "done", created, rng.choice(worker_ids), run,
                                client_id=rng.choice(["n8n-flow", "studio-tool", "batch-script"]),
                                error={"type": "execution_error", "message": "CUDA out of memory"} if failed else None,
                                wait=rng.uniform(0.1, 4.0)))
    return rows


async def bulk_insert(store, rows: list[dict]) -> None:
    """Insert many job rows: one transaction on the store's own thread (row by row would take ~15 s for 10k)."""
    def insert(m, chunk_rows):
        with m.Job._meta.database.atomic():
            for i in range(0, len(chunk_rows), 200):
                m.Job.insert_many(chunk_rows[i:i + 200]).execute()
    try:
        await store._run(insert, store._m, rows)
    except AttributeError:  # the store's internals changed: fall back to its public method
        for row in rows:
            await store.insert_job(row)


def screenshot_path(name: str) -> str:
    """Where a view's screenshot goes (docs/img/NAME.png)."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    return str(DOCS_IMG / f"{name}.png")


async def shoot(page, name: str) -> None:
    """A screenshot of what the page shows now, for docs/img (after charts and fonts settle)."""
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.wait_for_timeout(300)
    await page.screenshot(path=screenshot_path(name))


async def go(page, view: str) -> None:
    """Open one of the admin page's views by its tab."""
    await page.click(f'.tabs a[data-view="{view}"]')
    await expect(page.locator(f'section.view[data-view="{view}"]')).to_be_visible()
