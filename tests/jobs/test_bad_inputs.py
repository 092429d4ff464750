"""What a new user sends by mistake gets ComfyUI's own answer (or a 400 naming the field)."""

from __future__ import annotations

from tests.fake_comfy import sample_workflow


async def test_an_unknown_node_type_is_answered_exactly_as_comfyui_does(cluster):
    sim = await cluster.add_sim()
    await cluster.wait_online()
    prompt = {**sample_workflow(), "99": {"class_type": "NoSuchNode", "inputs": {}}}
    status, body = await cluster.request("POST", "/prompt", json={"prompt": prompt})
    async with cluster.session.post(sim.url + "/prompt", json={"prompt": prompt}) as direct:
        comfy = await direct.json()
        assert direct.status == 400
    assert status == 400
    assert {k: body["error"][k] for k in ("type", "message", "details")} == \
        {k: comfy["error"][k] for k in ("type", "message", "details")} == {
            "type": "invalid_prompt", "message": "Cannot execute because node NoSuchNode does not exist.",
            "details": "Node ID '#99'"}
    assert body["node_errors"] == comfy["node_errors"] == {}
    assert "NoSuchNode" in body["error"]["extra_info"]["workers"]["sim1"], "the gateway's per-worker reason"


async def test_nodes_that_exist_on_some_worker_keep_no_capable_worker(cluster):
    await cluster.add_sim(missing_nodes=("ImageInvert",))
    await cluster.add_sim(missing_nodes=("ImageBlur",))
    await cluster.wait_online()
    status, body = await cluster.request("POST", "/prompt", json={"prompt": sample_workflow()})
    assert status == 400 and body["error"]["type"] == "no_capable_worker"
    assert body["error"]["extra_info"]["missing_node_types"] == ["ImageBlur", "ImageInvert"]


async def test_a_bad_delete_list_and_a_bad_url_name_their_field(cluster):
    for body in ({"delete": 5}, {"delete": [1, 2]}, {"delete": "abc"}):
        status, answer = await cluster.request("POST", "/queue", json=body)
        assert status == 400 and answer["error"]["field"] == "delete", body
    status, answer = await cluster.request("POST", "/history", json={"delete": 7})
    assert status == 400 and answer["error"]["field"] == "delete"
    for url in ("not a url", "http://not a url", "http://exa\tmple:8188", "http://-bad-.example:1", "http://a_b!:80"):
        status, answer = await cluster.request("POST", "/api/workers", json={"url": url})
        assert status == 400 and answer["error"]["field"] == "url", (url, answer)
    assert (await cluster.get("/api/workers")) == []
