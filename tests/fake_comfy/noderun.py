"""Runtime behaviour of the fake nodes.

Each behaviour is ``async def fn(rt, node_id, inputs) -> (outputs, ui)`` where
``inputs`` has links already replaced by upstream values, ``outputs`` is a
tuple (one value per output slot) and ``ui`` is the UI dict reported in
``executed``/history (or None).  ``rt`` is the engine's :class:`NodeRuntime`
(``work``, ``progress``, ``send_text``, ``save_images``, ...).

Durations: ``rt.work(units)`` sleeps ``units * node_seconds / speed``.  Most
nodes cost 1 unit; EmptyImage and ImagePadForOutpaint cost
``pixels / (512*512)`` units; KSampler costs one unit per step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Dict

from .imaging import Img, load_image

PIXEL_UNIT = 512 * 512


@dataclasses.dataclass
class Latent:
    """A fake latent batch (pixel size / 8)."""

    width: int
    height: int
    batch: int
    tag: str = ""


def _color_of(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:6], 16)


async def empty_image(rt, node_id, inputs):
    w, h = inputs["width"], inputs["height"]
    await rt.work(w * h / PIXEL_UNIT)
    return (Img.solid(w, h, inputs["batch_size"], inputs["color"]),), None


async def load_image_node(rt, node_id, inputs):
    await rt.work(1)
    img = load_image(rt.input_path(inputs["image"]))
    return (img, ("MASK", img.width, img.height)), None


async def load_image_mask(rt, node_id, inputs):
    await rt.work(1)
    img = load_image(rt.input_path(inputs["image"]))
    return (("MASK", img.width, img.height),), None


async def invert(rt, node_id, inputs):
    await rt.work(1)
    return (inputs["image"].inverted(),), None


async def scale(rt, node_id, inputs):
    await rt.work(1)
    img = inputs["image"]
    w, h = inputs["width"], inputs["height"]
    if w == 0 and h == 0:
        w, h = img.width, img.height
    elif w == 0:
        w = max(1, round(img.width * h / img.height))
    elif h == 0:
        h = max(1, round(img.height * w / img.width))
    return (img.derive(width=w, height=h),), None


async def scale_by(rt, node_id, inputs):
    await rt.work(1)
    img = inputs["image"]
    f = inputs["scale_by"]
    return (img.derive(width=round(img.width * f), height=round(img.height * f)),), None


async def blur(rt, node_id, inputs):
    await rt.work(1)
    return (inputs["image"].blurred(inputs["blur_radius"]),), None


async def pad(rt, node_id, inputs):
    out = inputs["image"].padded(inputs["left"], inputs["top"], inputs["right"], inputs["bottom"])
    await rt.work(out.width * out.height / PIXEL_UNIT)
    return (out, ("MASK", out.width, out.height)), None


async def crop(rt, node_id, inputs):
    await rt.work(1)
    img = inputs["image"].cropped(inputs["width"], inputs["height"], inputs["x"], inputs["y"])
    return (img,), None


async def get_size(rt, node_id, inputs):
    await rt.work(1)
    img = inputs["image"]
    rt.send_text(node_id, f"width: {img.width}, height: {img.height}\n batch size: {img.batch}")
    return (img.width, img.height, img.batch), None


async def save_image(rt, node_id, inputs):
    await rt.work(1)
    images = await rt.save_images(inputs["images"], inputs.get("filename_prefix", "ComfyUI"),
                                  "output")
    return (), {"images": images}


async def preview_image(rt, node_id, inputs):
    await rt.work(1)
    images = await rt.save_images(inputs["images"], None, "temp")
    return (), {"images": images}


async def save_ws(rt, node_id, inputs):
    await rt.work(1)
    img: Img = inputs["images"]
    for step in range(img.batch):
        await rt.progress(step, img.batch, preview=img.render())
    return (), None


async def primitive(rt, node_id, inputs):
    await rt.work(1)
    return (inputs["value"],), None


def _describe(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    if isinstance(value, Img):
        return f"Image tensor of shape [{value.batch}, {value.height}, {value.width}, 3]"
    try:
        return json.dumps(value, indent=4)
    except (TypeError, ValueError):
        return str(value)


async def preview_any(rt, node_id, inputs):
    await rt.work(1)
    return (), {"text": [_describe(inputs.get("source"))]}


async def passthrough(rt, node_id, inputs):
    await rt.work(1)
    img = inputs.get("image")
    if not isinstance(img, Img):
        img = Img.solid(64, 64, 1, 0x808080)
    return (img,), None


async def checkpoint(rt, node_id, inputs):
    await rt.work(1)
    name = inputs["ckpt_name"]
    return (("MODEL", name), ("CLIP", name), ("VAE", name)), None


async def lora(rt, node_id, inputs):
    await rt.work(1)
    return (("MODEL", inputs["lora_name"]), ("CLIP", inputs["lora_name"])), None


async def vae_loader(rt, node_id, inputs):
    await rt.work(1)
    return (("VAE", inputs["vae_name"]),), None


async def clip_encode(rt, node_id, inputs):
    await rt.work(1)
    return (("CONDITIONING", str(inputs["text"])),), None


async def empty_latent(rt, node_id, inputs):
    await rt.work(1)
    return (Latent(inputs["width"] // 8, inputs["height"] // 8, inputs["batch_size"]),), None


async def ksampler(rt, node_id, inputs):
    steps = inputs["steps"]
    for step in range(1, steps + 1):
        rt.check_interrupt()
        await rt.work(1)
        await rt.progress(step, steps)
    lat: Latent = inputs["latent_image"]
    tag = json.dumps([inputs["seed"], inputs["positive"], inputs["negative"], steps], default=str)
    return (Latent(lat.width, lat.height, lat.batch, tag),), None


async def vae_decode(rt, node_id, inputs):
    await rt.work(1)
    lat: Latent = inputs["samples"]
    return (Img.solid(lat.width * 8, lat.height * 8, lat.batch, _color_of(lat.tag)),), None


BEHAVIOURS: Dict[str, Any] = {
    "EmptyImage": empty_image, "LoadImage": load_image_node, "LoadImageMask": load_image_mask,
    "ImageInvert": invert, "ImageScale": scale, "ImageScaleBy": scale_by, "ImageBlur": blur,
    "ImagePadForOutpaint": pad, "ImageCrop": crop, "GetImageSize": get_size,
    "SaveImage": save_image, "PreviewImage": preview_image, "SaveImageWebsocket": save_ws,
    "PrimitiveString": primitive, "PreviewAny": preview_any, "Passthrough": passthrough,
    "CheckpointLoaderSimple": checkpoint, "LoraLoader": lora, "VAELoader": vae_loader,
    "CLIPTextEncode": clip_encode, "EmptyLatentImage": empty_latent, "KSampler": ksampler,
    "VAEDecode": vae_decode,
}

# Classes whose IS_CHANGED makes them re-run every time (never served from cache).
ALWAYS_RUN = {"SaveImageWebsocket"}
# Classes whose cache key includes the hash of the input file they read.
FILE_HASHED = {"LoadImage": "image", "LoadImageMask": "image"}
