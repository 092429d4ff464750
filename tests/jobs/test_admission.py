"""Queue limits: the cluster's max_queued and each key's max_queued_per_key answer 429 with Retry-After in
ComfyUI's error shape (real gateway process)."""

from __future__ import annotations

import aiohttp

from tests.conftest import register_online
from tests.fake_comfy import sample_workflow


async def test_queue_limits_answer_429_with_retry_after(start_gateway, fake_comfy_factory):
    gw = await start_gateway({"GATEWAY_API_KEYS": "key-a,key-b", "GATEWAY_MAX_QUEUED": "3",
                              "GATEWAY_MAX_QUEUED_PER_KEY": "2", "GATEWAY_ADMIN_TOKEN": "adm"})
    await register_online(gw, await fake_comfy_factory(), headers={"Authorization": "Bearer adm"})
    async with aiohttp.ClientSession() as session:
        async with session.post(gw.url + "/api/dispatch", json={"paused": True},
                                headers={"Authorization": "Bearer adm"}) as response:
            assert response.status == 200  # nothing runs, so every accepted job stays unfinished

        async def submit(key):
            async with session.post(gw.url + "/prompt", json={"prompt": sample_workflow()},
                                    headers={"Authorization": f"Bearer {key}"}) as response:
                return response.status, response.headers.get("Retry-After"), await response.json()

        assert [(await submit("key-a"))[0] for _ in range(2)] == [200, 200]
        status, retry, body = await submit("key-a")
        assert status == 429 and retry == "5"
        assert body["error"]["type"] == "queue_full" and "max_queued_per_key" in body["error"]["message"]
        assert set(body) == {"error", "node_errors"} and set(body["error"]) == {"type", "message", "details",
                                                                                 "extra_info"}
        assert (await submit("key-b"))[0] == 200  # another key has its own allowance
        status, retry, body = await submit("key-b")
        assert status == 429 and "max_queued" in body["error"]["message"] and retry == "5"
        # Room again once jobs finish (cancelled here).
        async with session.get(gw.url + "/api/tasks?state=queued", headers={"Authorization": "Bearer adm"}) as r:
            queued = [item["prompt_id"] for item in (await r.json())["items"]]
        async with session.post(gw.url + "/queue", json={"delete": queued[:2]},
                                headers={"Authorization": "Bearer key-a"}) as response:
            assert response.status == 200
        assert (await submit("key-b"))[0] == 200
