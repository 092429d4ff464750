"""Behaviour of the simulator beyond the recorded traces (control surface, edge cases)."""

from __future__ import annotations

import asyncio
import base64
import io
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from tests.fake_comfy import (
    FakeComfy,
    ksampler_workflow,
    sample_workflow,
    slow_workflow,
    transform_workflow,
    websocket_image_workflow,
)
from tests.fake_comfy.testing import WsRecorder, frame_type


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def make_sim():
    sims = []

    async def make(**kwargs):
        sim = FakeComfy(**kwargs)
        sims.append(sim)
        await sim.start()
        return sim

    yield make
    for sim in sims:
        await sim.stop()
        sim.cleanup()


async def submit(session, sim, prompt, **extra):
    async with session.post(sim.url + "/prompt", json={"prompt": prompt, **extra}) as r:
        return r.status, await r.json()


async def history(session, sim, pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(f"{sim.url}/api/history/{pid}") as r:
            body = await r.json()
        if body:
            return body[pid]
        await asyncio.sleep(0.02)
    raise AssertionError("no history")


def basic(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def png(color, size=(4, 4)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


async def upload(session, sim, data, name, **fields):
    form = aiohttp.FormData()
    form.add_field("image", data, filename=name, content_type="image/png")
    for k, v in fields.items():
        form.add_field(k, v)
    async with session.post(sim.url + "/api/upload/image", data=form) as r:
        return r.status, (await r.json() if r.status == 200 else await r.text())


# ----------------------------------------------------------------------------- files


async def test_view_range_head_and_variants(session, make_sim):
    sim = await make_sim()
    status, resp = await submit(session, sim, sample_workflow(color=0xFF8000, size=40))
    entry = await history(session, sim, resp["prompt_id"])
    img = entry["outputs"]["4"]["images"][0]
    assert img == {"filename": "generated_00001_.png", "subfolder": "gateway_test", "type": "output"}
    path = sim.output_dir / "gateway_test" / "generated_00001_.png"
    raw = path.read_bytes()
    with Image.open(path) as pil:  # inverted orange, real dimensions
        assert pil.size == (40, 40)
        assert pil.getpixel((20, 20))[:3] == (0, 0x7F, 0xFF)
    url = f"{sim.url}/view?filename=generated_00001_.png&subfolder=gateway_test&type=output"
    async with session.get(url, headers={"Range": "bytes=0-9"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 0-9/{len(raw)}"
        assert await r.read() == raw[:10]
    async with session.get(url) as r:
        assert r.status == 200 and await r.read() == raw
        etag = r.headers["ETag"]
    async with session.get(url, headers={"If-None-Match": etag}) as r:
        assert r.status == 304
    async with session.head(url) as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(raw)
    async with session.get(f"{sim.url}/view?filename=generated_00001_.png [output]"
                           "&subfolder=gateway_test&type=input") as r:
        assert r.status == 200  # annotation overrides type
    async with session.get(url + "&preview=jpeg;80") as r:
        assert r.headers["Content-Type"] == "image/jpeg"
    async with session.get(url + "&preview=jpeg;80&channel=a") as r:
        assert r.headers["Content-Type"] == "image/webp"  # any 'a' in channel forces webp
    async with session.get(url + "&channel=rgb") as r:
        assert r.headers["Content-Type"] == "image/png"
    async with session.get(url + "&channel=a") as r:
        with Image.open(io.BytesIO(await r.read())) as pil:
            assert pil.mode == "RGBA"
    for bad, code in (("/view?filename=x.png&type=bogus", 400), ("/view", 404),
                      ("/view?filename=/etc/passwd", 400), ("/view?filename=a/../../x", 400)):
        async with session.get(sim.url + bad) as r:
            assert r.status == code, bad


async def test_upload_rename_rules_and_loadimage_combo(session, make_sim):
    sim = await make_sim()
    a, b, c = png((255, 0, 0)), png((0, 255, 0)), png((0, 0, 255))
    assert await upload(session, sim, a, "pic.png") == (200, {"name": "pic.png", "subfolder": "",
                                                              "type": "input"})
    assert (await upload(session, sim, a, "pic.png"))[1]["name"] == "pic.png"
    assert (await upload(session, sim, b, "pic.png"))[1]["name"] == "pic (1).png"
    assert (await upload(session, sim, c, "pic.png"))[1]["name"] == "pic (2).png"
    assert (await upload(session, sim, b, "pic.png"))[1]["name"] == "pic (1).png"  # dedup
    assert (await upload(session, sim, c, "pic.png", overwrite="1"))[1]["name"] == "pic.png"
    assert (sim.input_dir / "pic.png").read_bytes() == c
    status, body = await upload(session, sim, a, "pic.png", subfolder="sub", type="temp")
    assert body == {"name": "pic.png", "subfolder": "sub", "type": "temp"}
    assert (sim.temp_dir / "sub" / "pic.png").read_bytes() == a
    assert (await upload(session, sim, a, "x.png", subfolder="../../etc"))[0] == 400
    async with session.get(sim.url + "/object_info/LoadImage") as r:
        combo = (await r.json())["LoadImage"]["input"]["required"]["image"][0]
    assert combo == ["example.png", "pic (1).png", "pic (2).png", "pic.png"]
    # workflow B on the upload: scaled/inverted output + a temp preview
    status, resp = await submit(session, sim, transform_workflow("pic (1).png", width=30, height=20))
    assert status == 200
    entry = await history(session, sim, resp["prompt_id"])
    assert entry["outputs"]["14"]["images"][0]["filename"] == "transformed_00001_.png"
    prev = entry["outputs"]["15"]["images"][0]
    assert prev["type"] == "temp" and prev["filename"].startswith("ComfyUI_temp_")
    assert (sim.temp_dir / prev["filename"]).is_file()
    with Image.open(sim.output_dir / "gateway_test" / "transformed_00001_.png") as pil:
        assert pil.size == (30, 20) and pil.getpixel((15, 10))[:3] == (255, 0, 255)


async def test_upload_mask(session, make_sim):
    sim = await make_sim()
    await upload(session, sim, png((10, 20, 30), (6, 6)), "base.png")
    mask = Image.new("RGBA", (6, 6), (0, 0, 0, 77))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    form = aiohttp.FormData()
    form.add_field("image", buf.getvalue(), filename="masked.png", content_type="image/png")
    form.add_field("original_ref", '{"filename": "base.png", "type": "input"}')
    async with session.post(sim.url + "/upload/mask", data=form) as r:
        assert r.status == 200
        assert await r.json() == {"name": "masked.png", "subfolder": "", "type": "input"}
    with Image.open(sim.input_dir / "masked.png") as pil:
        assert pil.mode == "RGBA" and pil.getpixel((1, 1)) == (10, 20, 30, 77)


# ----------------------------------------------------------------------------- prompts


async def test_prompt_ids_numbers_and_validation(session, make_sim):
    sim = await make_sim(models={"checkpoints": ["sd15.safetensors"]})
    pid = str(uuid.uuid4())
    status, body = await submit(session, sim, sample_workflow(), prompt_id=pid)
    assert (status, body["prompt_id"], body["number"]) == (200, pid, 0)
    async with session.post(sim.url + "/prompt", json={"prompt": sample_workflow(),
                                                       "prompt_id": pid}) as r:
        assert r.status == 409 and await r.json() == {"error": "prompt_id already exists"}
    status, body = await submit(session, sim, sample_workflow(), prompt_id=pid.upper())
    assert status == 400 and body["error"]["type"] == "invalid_prompt_id"
    status, body = await submit(session, sim, sample_workflow(), prompt_id=None)
    assert status == 200 and str(uuid.UUID(body["prompt_id"])) == body["prompt_id"]
    assert body["number"] == 3  # every POST without "number" counts, rejected ones too
    status, body = await submit(session, sim, sample_workflow(), front=True)
    assert body["number"] == -4
    status, body = await submit(session, sim, sample_workflow(), number=-100.5)
    assert body["number"] == -100.5
    await history(session, sim, body["prompt_id"])
    await history(session, sim, pid)  # the first one is in history now: still a duplicate
    assert (await submit(session, sim, sample_workflow(), prompt_id=pid))[0] == 409

    wf = sample_workflow()
    wf["1"]["inputs"].update(width="8", height=0)
    wf["2"]["inputs"]["sigma"] = "abc"
    wf["5"] = {"class_type": "SaveImage", "inputs": {"images": ["9", 0, 1]}}
    status, body = await submit(session, sim, wf)
    assert status == 400
    errs = {n: [e["type"] for e in v["errors"]] for n, v in body["node_errors"].items()}
    assert errs == {"1": ["value_smaller_than_min"], "2": ["invalid_input_type"],
                    "5": ["required_input_missing", "bad_linked_input"]}
    assert body["node_errors"]["1"]["dependent_outputs"] == ["4", "5"]  # 0.3.64 quirk
    assert body["error"]["details"] == ("Required input is missing: filename_prefix\n"
                                        "Bad linked input, must be a length-2 list of "
                                        "[node_id, slot_index]: images")
    wf = {"1": {"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
          "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    status, body = await submit(session, sim, wf)
    err = body["node_errors"]["1"]["errors"][0]
    assert err["type"] == "custom_validation_failed"
    assert err["details"] == "image - Invalid image file: nope.png"
    wf = ksampler_workflow(steps=2, ckpt="missing.safetensors")
    status, body = await submit(session, sim, wf)
    assert body["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"
    wf = ksampler_workflow(steps="3")
    wf["3"]["inputs"]["sampler_name"] = "bogus"
    status, body = await submit(session, sim, wf)
    cfg = body["node_errors"]["3"]["errors"][0]["extra_info"]["input_config"]
    assert cfg is None  # more than 20 options
    # coercion is visible in the queue/history prompt; partial execution targets
    wf = sample_workflow()
    wf["1"]["inputs"]["width"] = "16"
    wf["5"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    status, body = await submit(session, sim, wf, partial_execution_targets=["5"])
    entry = await history(session, sim, body["prompt_id"])
    assert entry["prompt"][2]["1"]["inputs"]["width"] == 16
    assert entry["prompt"][4] == ["5"] and list(entry["outputs"]) == ["5"]


async def test_queue_order_delete_and_history_paging(session, make_sim):
    sim = await make_sim()
    async with WsRecorder(session, sim.ws_url + "?clientId=q") as rec:
        _, a = await submit(session, sim, slow_workflow(0.4), client_id="q")
        await rec.wait_for(lambda f: f.get("type") == "executing")
        _, b = await submit(session, sim, sample_workflow())
        _, c = await submit(session, sim, sample_workflow())
        _, d = await submit(session, sim, sample_workflow(), front=True)
        _, e = await submit(session, sim, sample_workflow(), number=-100.5)
        assert sim.queue_remaining == 5
        async with session.post(sim.url + "/queue", json={"delete": [c["prompt_id"],
                                                                     a["prompt_id"]]}) as r:
            assert r.status == 200
        async with session.get(sim.url + "/queue") as r:
            q = await r.json()
        assert [i[1] for i in q["queue_running"]] == [a["prompt_id"]]
        assert len(q["queue_pending"]) == 3 and all(len(i) == 5 for i in q["queue_pending"])
        await history(session, sim, b["prompt_id"])
    assert sim.executed == [a["prompt_id"], e["prompt_id"], d["prompt_id"], b["prompt_id"]]
    async with session.get(sim.url + "/history?max_items=2") as r:
        assert list(await r.json()) == [d["prompt_id"], b["prompt_id"]]
    async with session.get(sim.url + "/history?offset=1&max_items=1") as r:
        assert list(await r.json()) == [e["prompt_id"]]
    async with session.post(sim.url + "/history", json={"delete": [e["prompt_id"]]}) as r:
        assert r.status == 200
    async with session.get(sim.url + "/history") as r:
        assert list(await r.json()) == [a["prompt_id"], d["prompt_id"], b["prompt_id"]]
    async with session.post(sim.url + "/history", json={"clear": True}) as r:
        assert r.status == 200
    async with session.get(sim.url + "/history") as r:
        assert await r.json() == {}
    async with session.post(sim.url + "/queue", data="{bad") as r:
        assert r.status == 500 and r.content_type == "text/plain"


# ----------------------------------------------------------------------------- execution


async def test_durations_scale_with_speed(session, make_sim):
    fast = await make_sim(speed=4.0, node_seconds=0.05)
    slow = await make_sim(speed=1.0, node_seconds=0.05)
    times = []
    for sim in (fast, slow):
        t0 = time.monotonic()
        _, body = await submit(session, sim, slow_workflow(0.6, node_seconds=0.05))
        await history(session, sim, body["prompt_id"])
        times.append(time.monotonic() - t0)
    assert times[0] < 0.35 and 0.55 < times[1] < 1.2, times


async def test_interrupt_lands_at_node_boundary(session, make_sim):
    sim = await make_sim(node_seconds=0.02)
    async with WsRecorder(session, sim.ws_url + "?clientId=i") as rec:
        _, a = await submit(session, sim, slow_workflow(1.0, node_seconds=0.02), client_id="i")
        _, b = await submit(session, sim, sample_workflow(), client_id="i")
        await rec.wait_for(lambda f: f.get("type") == "executing")
        t0 = time.monotonic()
        async with session.post(sim.url + "/interrupt", data="not json") as r:
            assert r.status == 200 and await r.read() == b""
        intr = await rec.wait_for(lambda f: f.get("type") == "execution_interrupted")
        assert time.monotonic() - t0 > 0.3  # node 1 (about 0.5 s) was not cut short
        assert intr["data"]["node_id"] == "2" and intr["data"]["executed"] == ["1"]
        await rec.wait_done(b["prompt_id"])  # the next prompt runs normally
    entry = await history(session, sim, a["prompt_id"])
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}
    assert (await history(session, sim, b["prompt_id"]))["status"]["completed"] is True


async def test_ksampler_progress_cached_rerun_and_free(session, make_sim):
    sim = await make_sim(models={"checkpoints": ["sd15.safetensors"]})
    wf = ksampler_workflow(steps=5, seed=7)
    async with WsRecorder(session, sim.ws_url + "?clientId=k") as rec:
        _, body = await submit(session, sim, wf, client_id="k")
        await rec.wait_done(body["prompt_id"])
        progress = [f["data"] for f in rec.frames if f.get("type") == "progress"]
        assert [(p["value"], p["max"], p["node"]) for p in progress] == [
            (i, 5, "3") for i in range(1, 6)]
        states = [f["data"]["nodes"]["3"] for f in rec.frames if f.get("type") == "progress_state"
                  and "3" in f["data"]["nodes"]]
        assert states[-1]["value"] == 5 and states[-1]["state"] == "finished"
        start = len(rec.frames)
        _, again = await submit(session, sim, ksampler_workflow(steps=5, seed=7), client_id="k")
        await rec.wait_done(again["prompt_id"])
        types = [frame_type(f) for f in rec.frames[start:]]
        assert "executing" in types and "progress" not in types
        cached = next(f for f in rec.frames[start:] if f.get("type") == "execution_cached")
        assert cached["data"]["nodes"] == ["4", "5", "6", "7", "3", "8", "9"]
        async with session.post(sim.url + "/free", json={"free_memory": True}) as r:
            assert r.status == 200
        start = len(rec.frames)
        _, third = await submit(session, sim, ksampler_workflow(steps=5, seed=7), client_id="k")
        await rec.wait_done(third["prompt_id"])
        assert sum(1 for f in rec.frames[start:] if f.get("type") == "progress") == 5
    files = sorted(p.name for p in (sim.output_dir / "gateway_test").iterdir())
    assert files == ["ksampler_00001_.png", "ksampler_00002_.png"]


async def test_fail_prompt(session, make_sim):
    sim = await make_sim()
    sim.fail_prompt(lambda pid, prompt: prompt["1"]["inputs"]["color"] == 0x123456)
    async with WsRecorder(session, sim.ws_url + "?clientId=f") as rec:
        _, bad = await submit(session, sim, sample_workflow(color=0x123456), client_id="f")
        await rec.wait_done(bad["prompt_id"])
        types = [frame_type(f) for f in rec.frames]
        assert types[-3:] == ["execution_error", "status", "executing"]
        err = next(f["data"] for f in rec.frames if f.get("type") == "execution_error")
        assert err["node_id"] == "1" and err["node_type"] == "EmptyImage"
        assert err["exception_message"].endswith("\n") and err["traceback"]
        good_pid = str(uuid.uuid4())
        sim.fail_prompt(good_pid)
        _, good = await submit(session, sim, sample_workflow(), client_id="f", prompt_id=good_pid)
        await rec.wait_done(good_pid)
    for pid in (bad["prompt_id"], good_pid):
        entry = await history(session, sim, pid)
        assert entry["status"]["status_str"] == "error"
        assert entry["status"]["messages"][-1][0] == "execution_error"


async def test_preview_and_text_frames_targeting(session, make_sim):
    sim = await make_sim()
    wf = websocket_image_workflow(size=8)
    wf["3"] = {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}}
    wf["4"] = {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}
    async with WsRecorder(session, sim.ws_url + "?clientId=owner") as owner, \
            WsRecorder(session, sim.ws_url) as observer:
        sid = observer.frames[0]["data"]["sid"]
        assert len(sid) == 32 and int(sid, 16) >= 0
        await owner.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        await owner.wait_for(lambda f: f.get("type") == "feature_flags")
        _, body = await submit(session, sim, wf, client_id="owner")
        await owner.wait_done(body["prompt_id"])
        await asyncio.sleep(0.1)
    o_types = [frame_type(f) for f in owner.frames]
    assert "binary:4" in o_types and "binary:1" not in o_types and "binary:3" in o_types
    text = next(f for f in owner.frames if f.get("event_type") == 3)
    assert text["header"]["node_id"] == "3"
    assert text["text"] == "width: 8, height: 8\n batch size: 1"
    executed = next(f["data"] for f in owner.frames if f.get("type") == "executed")
    assert executed["output"] == {"text": ["8"]}
    obs_types = {frame_type(f) for f in observer.frames}
    assert obs_types == {"status", "binary:3"}  # only broadcasts reach the observer


async def test_client_id_reuse_caveat_and_reconnect_frame(session, make_sim):
    sim = await make_sim(node_seconds=0.02)
    old = await WsRecorder(session, sim.ws_url + "?clientId=dup").connect()
    new = await WsRecorder(session, sim.ws_url + "?clientId=dup").connect()
    await old.close()  # 0.3.64: closing the stale socket unregisters the sid for both
    await asyncio.sleep(0.05)
    _, body = await submit(session, sim, sample_workflow(), client_id="dup")
    await history(session, sim, body["prompt_id"])
    await asyncio.sleep(0.1)
    assert {frame_type(f) for f in new.frames} == {"status"}
    await new.close()
    # reconnect while own prompt runs: status + executing(node) without prompt_id
    async with WsRecorder(session, sim.ws_url + "?clientId=re") as first:
        _, body = await submit(session, sim, slow_workflow(0.6, node_seconds=0.02), client_id="re")
        await first.wait_for(lambda f: f.get("type") == "executing")
    async with WsRecorder(session, sim.ws_url + "?clientId=re") as again:
        await again.wait_for(lambda f: f.get("type") == "executing")
        assert again.frames[1] == {"type": "executing", "data": {"node": "1"}}
        await again.wait_done(body["prompt_id"])


# ----------------------------------------------------------------------------- server


async def test_basic_auth(session, make_sim):
    sim = await make_sim(auth=("user", "pass"))
    async with session.get(sim.url + "/api/queue") as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="comfyui"'
    async with session.get(sim.url + "/queue", headers=basic("user", "nope")) as r:
        assert r.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await session.ws_connect(sim.ws_url)
    assert exc.value.status == 401
    async with session.get(sim.url + "/queue", headers=basic("user", "pass")) as r:
        assert r.status == 200
    async with WsRecorder(session, sim.ws_url, headers=basic("user", "pass")) as rec:
        assert rec.frames[0]["type"] == "status"


async def test_origin_check_prefixes_and_404(session, make_sim):
    sim = await make_sim()
    host = f"127.0.0.1:{sim.port}"
    for origin, code in ((f"http://{host}", 200), ("http://evil.example.com", 403),
                         ("http://127.0.0.1:9000", 403)):
        async with session.get(sim.url + "/api/prompt", headers={"Origin": origin}) as r:
            assert r.status == code, origin
    async with session.get(sim.url + "/prompt", headers={"Origin": "http://x.example",
                                                         "Host": "gateway.example:9000"}) as r:
        assert r.status == 200
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await session.ws_connect(sim.url + "/api/ws", headers={"Origin": "http://evil.example"})
    async with session.get(sim.url + "/nope") as r:
        assert (r.status, await r.read()) == (404, b"")
    async with session.get(sim.url + "/object_info/Nope") as r:
        assert await r.json() == {}
    async with session.get(sim.url + "/api/models/checkpoints") as r:
        assert await r.json() == []
    async with session.get(sim.url + "/models/unknown") as r:
        assert r.status == 404
    async with session.get(sim.url + "/features") as r:
        assert (await r.json())["supports_preview_metadata"] is True


async def test_extra_and_missing_nodes(session, make_sim):
    sim = await make_sim(extra_nodes=["MyUpscaler"], missing_nodes=["ImageBlur"],
                         models={"loras": ["a.safetensors"]})
    async with session.get(sim.url + "/object_info") as r:
        info = await r.json()
    assert "MyUpscaler" in info and "ImageBlur" not in info
    assert info["LoraLoader"]["input"]["required"]["lora_name"][0] == ["a.safetensors"]
    status, body = await submit(session, sim, sample_workflow())
    assert status == 400 and body["error"]["type"] == "invalid_prompt"
    wf = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                       "color": 1}},
          "2": {"class_type": "MyUpscaler", "inputs": {"image": ["1", 0]}},
          "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                      "filename_prefix": "x"}}}
    status, body = await submit(session, sim, wf)
    assert status == 200
    assert (await history(session, sim, body["prompt_id"]))["status"]["completed"]


async def test_crash_and_restart_same_port(session, make_sim):
    sim = await make_sim(node_seconds=0.02)
    port = sim.port
    _, done = await submit(session, sim, sample_workflow())
    await history(session, sim, done["prompt_id"])
    rec = await WsRecorder(session, sim.ws_url + "?clientId=c").connect()
    _, running = await submit(session, sim, slow_workflow(2.0, node_seconds=0.02), client_id="c")
    await rec.wait_for(lambda f: f.get("type") == "executing")
    await sim.crash()
    await asyncio.wait_for(rec.closed.wait(), 2)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as fresh:
            await fresh.get(sim.url + "/queue")
    await sim.restart()
    assert sim.port == port
    async with session.get(sim.url + "/queue") as r:
        assert await r.json() == {"queue_running": [], "queue_pending": []}
    async with session.get(sim.url + "/history") as r:
        assert await r.json() == {}
    _, again = await submit(session, sim, sample_workflow())
    assert again["number"] == 0  # counter reset
    await history(session, sim, again["prompt_id"])
    assert (sim.output_dir / "gateway_test" / "generated_00002_.png").is_file()  # files stay
    assert sim.executed == [done["prompt_id"], running["prompt_id"], again["prompt_id"]]
    await sim.stop()
    await sim.restart()
    async with session.get(sim.url + "/prompt") as r:
        assert await r.json() == {"exec_info": {"queue_remaining": 0}}


async def test_hang_and_garbage(session, make_sim):
    sim = await make_sim()
    sim.garbage_http = True
    async with session.get(sim.url + "/queue") as r:
        assert r.status == 200
        with pytest.raises(Exception):
            await r.json(content_type=None)
    sim.garbage_http = False
    sim.hang_http = True
    with pytest.raises(asyncio.TimeoutError):
        async with session.get(sim.url + "/queue", timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    held = asyncio.ensure_future(session.get(sim.url + "/prompt"))
    await asyncio.sleep(0.2)
    assert not held.done()
    sim.hang_http = False
    async with session.get(sim.url + "/queue") as r:
        assert r.status == 200
    async with await asyncio.wait_for(held, 2) as r:  # the held request is released
        assert r.status == 200


async def test_cli_runs(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fake_comfy", "--port", "0",
        "--models", "checkpoints=a.safetensors,b.safetensors", "--extra-nodes", "X,Y",
        "--auth", "u:p", cwd=str(Path(__file__).resolve().parents[2]), stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
        assert "fake ComfyUI listening on http://127.0.0.1:" in line
        url = line.strip().rsplit(" ", 1)[1]
        async with aiohttp.ClientSession(headers=basic("u", "p")) as s:
            async with s.get(url + "/models/checkpoints") as r:
                assert await r.json() == ["a.safetensors", "b.safetensors"]
            async with s.get(url + "/object_info/Y") as r:
                assert "Y" in await r.json()
    finally:
        proc.terminate()
        await proc.wait()


async def test_partially_cached_prompt(session, make_sim):
    sim = await make_sim()
    wf = sample_workflow(color=0x010203)
    async with WsRecorder(session, sim.ws_url + "?clientId=p") as rec:
        _, first = await submit(session, sim, wf, client_id="p")
        await rec.wait_done(first["prompt_id"])
        wf["4"]["inputs"]["filename_prefix"] = "gateway_test/other"
        start = len(rec.frames)
        _, second = await submit(session, sim, wf, client_id="p")
        await rec.wait_done(second["prompt_id"])
    frames = rec.frames[start:]
    cached = next(f["data"]["nodes"] for f in frames if f.get("type") == "execution_cached")
    assert cached == ["1", "2", "3"]
    assert [f["data"]["node"] for f in frames if f.get("type") == "executing"] == ["4", None]
    states = [f["data"]["nodes"] for f in frames if f.get("type") == "progress_state"]
    assert [list(s) for s in states] == [["4"], ["4"]]
    entry = await history(session, sim, second["prompt_id"])
    assert entry["outputs"]["4"]["images"][0]["filename"] == "other_00001_.png"
