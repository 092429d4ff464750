"""Informational routes: /object_info, /system_stats, /features, /models, ... (§8)."""

from __future__ import annotations

import sys

from aiohttp import web

from .wshub import SERVER_FEATURES

MODEL_FOLDERS = [
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
    "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen",
    "upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers",
    "model_patches", "audio_encoders",
]
RAM_TOTAL = 64 * 1024 ** 3
REQUIRED_FRONTEND = "1.27.10"  # what ComfyUI 0.3.64 pins (requirements-dev.txt installs it)


class InfoRoutes:
    """Handlers bound to one FakeComfy."""

    def __init__(self, sim):
        self.sim = sim

    def register(self, add):
        add("GET", "/object_info", self.object_info)
        add("GET", "/object_info/{node_class}", self.object_info_one)
        add("GET", "/system_stats", self.system_stats)
        add("GET", "/features", self.features)
        add("GET", "/embeddings", self.embeddings)
        add("GET", "/models", self.models)
        add("GET", "/models/{folder}", self.models_folder)

    async def object_info(self, request):
        return web.json_response({name: d.object_info(self.sim) for name, d in self.sim.nodes.items()})

    async def object_info_one(self, request):
        name = request.match_info["node_class"]
        ndef = self.sim.nodes.get(name)
        return web.json_response({name: ndef.object_info(self.sim)} if ndef else {})

    async def system_stats(self, request):
        sim = self.sim
        vram_free = max(0, sim.vram_total - 1024 ** 3)
        return web.json_response({
            "system": {
                "os": "posix", "ram_total": RAM_TOTAL, "ram_free": RAM_TOTAL // 2,
                "comfyui_version": "0.3.64", "required_frontend_version": REQUIRED_FRONTEND,
                "installed_templates_version": "0.1.95", "required_templates_version": "0.1.95",
                "python_version": sys.version, "pytorch_version": "2.8.0+cu128",
                "embedded_python": False,
                "argv": ["main.py", "--listen", sim.host or "127.0.0.1", "--port", str(sim.port),
                         "--output-directory", str(sim.output_dir),
                         "--input-directory", str(sim.input_dir),
                         "--temp-directory", str(sim.temp_dir)],
            },
            "devices": [{
                "name": sim.device_name,
                "type": "cuda" if sim.device_name.startswith("cuda") else "cpu",
                "index": 0 if sim.device_name.startswith("cuda") else None,
                "vram_total": sim.vram_total, "vram_free": vram_free,
                "torch_vram_total": sim.vram_total // 2, "torch_vram_free": sim.vram_total // 4,
            }],
        })

    async def features(self, request):
        return web.json_response(dict(SERVER_FEATURES))

    async def embeddings(self, request):
        return web.json_response([])

    async def models(self, request):
        return web.json_response(self.sim.model_folders())

    async def models_folder(self, request):
        folder = request.match_info["folder"]
        if folder not in self.sim.model_folders():
            return web.Response(status=404)
        return web.json_response(self.sim.model_files(folder))
