"""First end-to-end check: one simulator, one job through the gateway."""

from tests.fake_comfy import sample_workflow


async def test_one_job_through_gateway(cluster):
    await cluster.add_sim()
    await cluster.wait_online()
    answer = await cluster.submit(sample_workflow())
    status = await cluster.wait_job(answer["prompt_id"])
    assert status["status"] == "done", status
    history = await cluster.get(f"/api/history/{answer['prompt_id']}")
    images = history[answer["prompt_id"]]["outputs"]["4"]["images"]
    assert images[0]["url"].startswith(cluster.url + "/api/view?")
