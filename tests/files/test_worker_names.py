"""Uploads never overwrite a worker's own files: they go to the gateway's namespace on the worker, the job's
loader values are rewritten at dispatch, and the client keeps seeing its own names."""

from __future__ import annotations

import io

from PIL import Image

from tests.fake_comfy.workflows import transform_workflow
from tests.handlers.test_comfy_client_flow import png_bytes, upload


async def test_an_upload_lands_beside_the_workers_own_file_of_the_same_name(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    own = (sim.input_dir / "example.png").read_bytes()
    mine = png_bytes((200, 10, 10), (8, 8))
    assert (await upload(cluster, mine, "example.png"))["name"] == "example.png"
    answer = await cluster.submit(transform_workflow("example.png"))
    prompt_id = answer["prompt_id"]
    final = await cluster.wait_job(prompt_id)
    assert final["status"] == "done", final
    assert (sim.input_dir / "example.png").read_bytes() == own, "the worker's own file is untouched"
    placed = list((sim.input_dir / "comfyui-gateway").rglob("example.png"))
    assert len(placed) == 1 and placed[0].read_bytes() == mine
    entry = (await cluster.get(f"/history/{prompt_id}"))[prompt_id]
    assert entry["prompt"][2]["10"]["inputs"]["image"] == "example.png", "the client sees its own name"
    preview = entry["outputs"]["15"]["images"][0]
    async with cluster.session.get(cluster.url + "/view", params={
            k: preview[k] for k in ("filename", "subfolder", "type")}) as response:
        image = Image.open(io.BytesIO(await response.read())).convert("RGB")
    assert image.getpixel((0, 0)) == (200, 10, 10), "the job loaded the client's bytes, not the worker's"
    # A second upload under the same name (other bytes, overwrite) goes to its own place too.
    other = png_bytes((10, 200, 10), (8, 8))
    await upload(cluster, other, "example.png", overwrite="true")
    answer = await cluster.submit(transform_workflow("example.png", prefix="gateway_test/second"))
    assert (await cluster.wait_job(answer["prompt_id"]))["status"] == "done"
    assert sorted(p.read_bytes() for p in (sim.input_dir / "comfyui-gateway").rglob("example.png")) == \
        sorted([mine, other])
    assert (sim.input_dir / "example.png").read_bytes() == own
