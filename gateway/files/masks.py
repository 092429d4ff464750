"""POST /upload/mask: copy an uploaded image's alpha channel onto an existing image, as ComfyUI does."""

from __future__ import annotations

import asyncio
import io
import json

from PIL import Image, PngImagePlugin

from ..errors import BadRequest, ComfyError, WorkerBadAnswer
from .locator import FileLocator, parse_view_query


async def _original_bytes(gateway, ref: dict) -> bytes:
    view = parse_view_query({"filename": ref.get("filename", ""), "subfolder": ref.get("subfolder", ""),
                             "type": ref.get("type") or "output"})
    location = await FileLocator(gateway).locate(view, None)
    if location is None:
        raise BadRequest(f"original_ref names a file that no worker has: {view.filename}",
                         extra={"field": "original_ref"})
    if location.path is not None:
        return await asyncio.get_running_loop().run_in_executor(None, location.path.read_bytes)
    response = await location.worker.client.request("GET", "/view", query=view.query)
    if response.status != 200:
        raise WorkerBadAnswer(f"worker {location.worker.name} answered {response.status} for the original image")
    return response.body


def _merge(original: bytes, mask: bytes) -> bytes:
    with Image.open(io.BytesIO(original)) as source, Image.open(io.BytesIO(mask)) as mask_image:
        info = PngImagePlugin.PngInfo()
        for key, value in (source.info or {}).items():
            if isinstance(key, str) and isinstance(value, str):
                info.add_text(key, value)
        merged = source.convert("RGBA")
        alpha = mask_image.convert("RGBA").getchannel("A")
        if alpha.size != merged.size:
            alpha = alpha.resize(merged.size)
        merged.putalpha(alpha)
        out = io.BytesIO()
        merged.save(out, format="PNG", pnginfo=info, compress_level=4)
        return out.getvalue()


async def apply_mask(gateway, mask: bytes, original_ref: str) -> bytes:
    """The original image named by original_ref with the mask's alpha, as PNG bytes."""
    try:
        ref = json.loads(original_ref) if original_ref else None
    except ValueError:
        ref = None
    if not isinstance(ref, dict) or not isinstance(ref.get("filename"), str) or not ref["filename"] \
            or not all(isinstance(ref.get(key, ""), str) for key in ("subfolder", "type")):
        raise BadRequest("field 'original_ref' must be JSON like {\"filename\": ..., \"subfolder\": ..., "
                         "\"type\": ...}", extra={"field": "original_ref"})
    original = await _original_bytes(gateway, ref)
    try:
        return await asyncio.get_running_loop().run_in_executor(None, _merge, original, mask)
    except OSError:
        raise ComfyError(400, b"") from None
