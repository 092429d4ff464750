"""A waiting job keeps its body as JSON text (Job.pack): nothing of it may change on the way."""
import json

from gateway.jobs.model import Job
from gateway.store import Store

BODY = {
    "prompt": {"3": {"class_type": "KSampler", "inputs": {"seed": 2**53 + 1, "cfg": 7.5, "model": ["4", 0],
                                                          "text": "ünïcødé 🎨 \"quoted\" \\ back"}},
               "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["3", 0]}}},
    "extra_data": {"extra_pnginfo": {"workflow": {"nodes": [1, 2, None, True]}}},
    "partial_execution_targets": ["9"],
    "front": False,
}


def make(number=7.0, body=None) -> Job:
    job = Job(prompt_id="p-1", gateway_job_id="g-1", seq=7, body_data=json.loads(json.dumps(body or BODY)),
              client_id="client-a", number=number)
    job.outputs_to_execute = ["9"]
    return job


def test_packing_keeps_the_body_and_the_queue_item_exactly():
    job = make()
    item = job.queue_item()
    job.pack()
    assert job.packed
    assert job.body == BODY and job.prompt == BODY["prompt"] and job.extra_data["client_id"] == "client-a"
    assert json.loads(job.queue_item_json()) == item
    assert json.loads(job.row()["body"]) == BODY
    job.number = -3.0  # moved to the front by the cluster's counter: the item follows
    assert json.loads(job.queue_item_json())[0] == -3
    job.unpack()
    assert not job.packed and job.body == BODY


def test_an_empty_body_and_a_fractional_number_pack_too():
    job = make(number=2.5, body={"prompt": {}})
    job.pack()
    assert job.body == {"prompt": {}} and json.loads(job.row()["body"]) == {"prompt": {}}
    assert json.loads(job.queue_item_json()) == [2.5, "p-1", {}, {"client_id": "client-a"}, ["9"]]


async def test_a_packed_body_is_stored_as_the_same_json(tmp_path):
    store = Store("sqlite", sqlite_path=str(tmp_path / "gw.sqlite3"))
    await store.open()
    try:
        job = make()
        job.pack()
        await store.insert_job(job.row(), fetch=False)
        assert (await store.get_job("p-1"))["body"] == BODY
    finally:
        await store.close()
