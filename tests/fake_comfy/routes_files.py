"""File routes: GET /view, POST /upload/image and POST /upload/mask (§6)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import mimetypes
import os
from pathlib import Path

from aiohttp import web
from PIL import Image, PngImagePlugin

log = logging.getLogger(__name__)

FORCED_DOWNLOAD = {"text/html", "text/html-sandboxed", "application/xhtml+xml",
                   "text/javascript", "text/css"}
ANNOTATIONS = {" [output]": "output", " [input]": "input", " [temp]": "temp"}


def split_annotation(name: str):
    """``"x.png [output]"`` -> ("x.png", "output"); no suffix -> (name, None)."""
    for suffix, kind in ANNOTATIONS.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], kind
    return name, None


def _inside(base: str, path: str) -> bool:
    return os.path.commonpath((os.path.abspath(path), base)) == base


class FileRoutes:
    """Handlers bound to one FakeComfy."""

    def __init__(self, sim):
        self.sim = sim

    def register(self, add):
        add("GET", "/view", self.view)
        add("POST", "/upload/image", self.upload_image)
        add("POST", "/upload/mask", self.upload_mask)

    def _dir(self, kind):
        return self.sim.dir_for_type(kind)

    # -- /view ----------------------------------------------------------------
    async def view(self, request):
        query = request.rel_url.query
        if "filename" not in query:
            return web.Response(status=404)
        filename, kind = split_annotation(query["filename"])
        if not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        base = self._dir(kind or query.get("type", "output"))
        if base is None:
            return web.Response(status=400)
        base = str(base)
        folder = base
        if "subfolder" in query:
            folder = os.path.join(base, query["subfolder"])
            if not _inside(base, folder):
                return web.Response(status=403)
        filename = os.path.basename(filename)
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            return web.Response(status=404)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        channel = query.get("channel", "rgba")
        if "preview" in query:
            body, ctype = await _to_thread(_preview, path, query["preview"], query.get("channel", ""))
            return web.Response(body=body, content_type=ctype, headers=disposition)
        if channel in ("rgb", "a"):
            body = await _to_thread(_channel, path, channel)
            return web.Response(body=body, content_type="image/png", headers=disposition)
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if ctype in FORCED_DOWNLOAD:
            ctype = "application/octet-stream"
        return web.FileResponse(path, headers={**disposition, "Content-Type": ctype})

    # -- uploads ----------------------------------------------------------------
    async def _store_upload(self, post, save=None):
        image = post.get("image")
        kind = post.get("type") or "input"
        base = self._dir(kind)
        if base is None:
            raise web.HTTPInternalServerError(text=f"unknown upload type {kind}")
        if image is None or not hasattr(image, "file") or not image.filename:
            return web.Response(status=400)
        base = str(base)
        subfolder = post.get("subfolder", "") or ""
        folder = os.path.join(base, os.path.normpath(subfolder))
        filename = image.filename
        path = os.path.abspath(os.path.join(folder, filename))
        if not _inside(base, path):
            return web.Response(status=400)
        os.makedirs(folder, exist_ok=True)
        data = image.file.read()
        overwrite = post.get("overwrite")
        duplicate = False
        if overwrite not in ("true", "1"):
            stem, ext = os.path.splitext(filename)
            i = 1
            while os.path.exists(path):
                if _sha256(Path(path).read_bytes()) == _sha256(data):
                    duplicate = True
                    break
                filename = f"{stem} ({i}){ext}"
                path = os.path.join(folder, filename)
                i += 1
        if not duplicate:
            if save is not None:
                await save(data, path)
            else:
                await _to_thread(Path(path).write_bytes, data)
        log.debug("upload %s -> %s (duplicate=%s)", image.filename, filename, duplicate)
        return web.json_response({"name": filename, "subfolder": post.get("subfolder", ""),
                                  "type": kind})

    async def upload_image(self, request):
        post = await request.post()
        return await self._store_upload(post)

    async def upload_mask(self, request):
        post = await request.post()
        ref = json.loads(post.get("original_ref"))  # missing -> 500 like ComfyUI
        ref_name, ref_kind = split_annotation(ref.get("filename", ""))
        if not ref_name or ref_name[0] == "/" or ".." in ref_name:
            return web.Response(status=400)
        base = self._dir(ref_kind or ref.get("type", "output"))
        if base is None:
            return web.Response(status=400)
        base = str(base)
        original = os.path.join(base, ref.get("subfolder", "") or "", ref_name)
        if not _inside(base, original):
            return web.Response(status=403)
        if not os.path.isfile(original):
            return web.Response(status=404)

        async def save(data, path):
            await _to_thread(_merge_mask, original, data, path)

        return await self._store_upload(post, save)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _to_thread(fn, *args):
    return await asyncio.to_thread(fn, *args)


def _preview(path: str, preview: str, channel: str):
    with Image.open(path) as img:
        info = preview.split(";")
        fmt = info[0]
        if fmt not in ("webp", "jpeg") or "a" in channel:
            fmt = "webp"
        quality = int(info[-1]) if info[-1].isdigit() else 90
        if fmt == "jpeg" or channel == "rgb":
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, format=fmt, quality=quality)
        return buf.getvalue(), f"image/{fmt}"


def _channel(path: str, channel: str) -> bytes:
    with Image.open(path) as img:
        if channel == "rgb":
            out = Image.merge("RGB", img.split()[:3]) if img.mode == "RGBA" else img.convert("RGB")
        else:
            alpha = img.split()[3] if img.mode == "RGBA" else Image.new("L", img.size, 255)
            out = Image.new("RGBA", img.size)
            out.putalpha(alpha)
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()


def _merge_mask(original: str, mask_data: bytes, dest: str) -> None:
    """Copy the uploaded image's alpha onto the original, keep its PNG text, save as PNG."""
    with Image.open(original) as orig:
        info = PngImagePlugin.PngInfo()
        for key, value in getattr(orig, "text", {}).items():
            info.add_text(key, value)
        base = orig.convert("RGBA")
    with Image.open(io.BytesIO(mask_data)) as mask:
        alpha = mask.convert("RGBA").getchannel("A").resize(base.size)
    base.putalpha(alpha)
    base.save(dest, format="PNG", pnginfo=info, compress_level=4)
