"""Unfinished jobs loaded with their body as stored text (restart with a deep queue); SQLite and MariaDB."""
import json

from gateway.store.models import RawJSON

from .test_store import BODY, job


async def test_bodies_come_as_the_json_text_and_everything_else_as_usual(store):
    await store.insert_job(job(1, state="queued", progress={"nodes_total": 3}))
    await store.insert_job(job(2, state="running", worker_id=4))
    await store.insert_job(job(3, state="done"))
    parsed = await store.load_unfinished_jobs()
    as_text = await store.load_unfinished_jobs(body_as_text=True)
    assert [r["prompt_id"] for r in as_text] == [r["prompt_id"] for r in parsed] == ["p-001", "p-002"]
    for text_row, parsed_row in zip(as_text, parsed):
        assert isinstance(text_row["body"], RawJSON) and json.loads(text_row["body"]) == BODY
        text_row.pop("body")
        parsed_row.pop("body")
        assert text_row == parsed_row
    assert as_text[0]["progress"] == {"nodes_total": 3} and as_text[1]["worker_id"] == 4
