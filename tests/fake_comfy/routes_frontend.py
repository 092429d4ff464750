"""The editor's static files and the routes it reads at load, served the way ComfyUI 0.3.64 does.

* ``/`` is ``index.html`` of the web root (the ``comfyui-frontend-package`` wheel's ``static`` folder, or
  another folder given as ``frontend_root``, like ComfyUI's ``--front-end-root``); ``/<path>`` are the
  files beside it (``/assets/...``, ``/extensions/core/...``, ``/scripts/...``). Without a frontend the
  simulator answers ``/`` with a small page, as before.
* ``/extensions/<pack>/...`` are the web folders of custom node packs (``custom_nodes``; by default
  the ``gateway_probe`` pack in ``tests/fake_comfy/custom_nodes``); ``/extensions`` lists every ``.js``
  file of the web root's ``extensions`` folder and of the packs' web folders.
* ``/i18n`` merges the packs' ``locales/<lang>/main.json`` (+ nodeDefs/commands/settings.json);
  ``/workflow_templates`` maps each pack to the names of its example workflows, which are served
  at ``/api/workflow_templates/<pack>/<name>.json``; ``/templates/...`` is the workflow templates
  folder (``templates_root``).
* ``/experiment/models[/{folder}]`` list model folders and files as the model browser reads them.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import quote

from aiohttp import web

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DEFAULT_CUSTOM_NODES = (HERE / "custom_nodes" / "gateway_probe",)
DEFAULT_TEMPLATES = HERE / "templates"
FALLBACK_INDEX = ("<!DOCTYPE html><html><head><title>ComfyUI</title></head>"
                  "<body><div id=\"app\">fake ComfyUI</div></body></html>")
NO_CACHE = {"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "0"}
LOCALE_EXTRAS = ("nodeDefs", "commands", "settings")
HIDDEN_MODEL_FOLDERS = ("configs", "custom_nodes")


def installed_frontend() -> Optional[Path]:
    """The static folder of the installed comfyui-frontend-package, or None."""
    try:
        import comfyui_frontend_package
    except ImportError:
        return None
    root = Path(comfyui_frontend_package.__file__).resolve().parent / "static"
    return root if (root / "index.html").is_file() else None


def frontend_version(root: Optional[Path]) -> Optional[str]:
    """The version of the frontend in ``root`` (from the wheel's dist-info next to it), or None."""
    if root is None:
        return None
    for info in root.parent.parent.glob("comfyui_frontend_package-*.dist-info"):
        return info.name[len("comfyui_frontend_package-"):-len(".dist-info")]
    return None


def _merge(target: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


def _load_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class FrontendRoutes:
    """Handlers bound to one FakeComfy; static mounts are added after every API route."""

    def __init__(self, sim):
        self.sim = sim

    @property
    def web_root(self) -> Optional[Path]:
        return self.sim.frontend_root

    def packs(self) -> Dict[str, Path]:
        """Custom node packs by module name."""
        return {Path(p).name: Path(p) for p in self.sim.custom_nodes}

    def register(self, add):
        add("GET", "/", self.index)
        add("GET", "/extensions", self.extensions)
        add("GET", "/i18n", self.i18n)
        add("GET", "/workflow_templates", self.workflow_templates)
        add("GET", "/experiment/models", self.model_folders)
        add("GET", "/experiment/models/{folder}", self.model_files)

    def register_static(self, app: web.Application) -> None:
        """/internal (no /api alias), then the static mounts in ComfyUI's order: pack web folders, pack
        workflows, templates, web root."""
        app.router.add_get("/internal/folder_paths", self.folder_paths)
        app.router.add_get("/internal/files/{directory_type}", self.internal_files)
        app.router.add_get("/internal/logs", self.logs)
        app.router.add_get("/internal/logs/raw", self.logs_raw)
        for name, pack in self.packs().items():
            if (pack / "web").is_dir():
                app.router.add_static("/extensions/" + quote(name), pack / "web")
            for folder in sorted(pack.iterdir()):
                if folder.is_dir() and ("example" in folder.name.lower() or "workflow" in folder.name.lower()):
                    app.router.add_static("/api/workflow_templates/" + name, folder)
        if self.sim.templates_root is not None and Path(self.sim.templates_root).is_dir():
            app.router.add_static("/templates", self.sim.templates_root)
        if self.web_root is not None:
            app.router.add_static("/", self.web_root)

    async def index(self, request):
        if self.web_root is None:
            return web.Response(text=FALLBACK_INDEX, content_type="text/html", headers=NO_CACHE)
        return web.FileResponse(self.web_root / "index.html", headers=NO_CACHE)

    async def extensions(self, request):
        found: List[str] = []
        if self.web_root is not None:
            for path in glob.glob(os.path.join(glob.escape(str(self.web_root)), "extensions/**/*.js"),
                                  recursive=True):
                found.append("/" + os.path.relpath(path, self.web_root).replace(os.sep, "/"))
        for name, pack in self.packs().items():
            web_dir = pack / "web"
            for path in glob.glob(os.path.join(glob.escape(str(web_dir)), "**/*.js"), recursive=True):
                found.append("/extensions/" + quote(name) + "/"
                             + os.path.relpath(path, web_dir).replace(os.sep, "/"))
        return web.json_response(found)

    async def i18n(self, request):
        translations: dict = {}
        for pack in sorted(self.packs().values()):
            for lang_dir in sorted(glob.glob(os.path.join(glob.escape(str(pack)), "locales", "*/"))):
                lang = os.path.basename(os.path.dirname(lang_dir))
                texts = _load_json(os.path.join(lang_dir, "main.json"))
                for extra in LOCALE_EXTRAS:
                    data = _load_json(os.path.join(lang_dir, extra + ".json"))
                    if data:
                        texts[extra] = data
                if texts:
                    translations[lang] = _merge(translations.get(lang, {}), texts)
        return web.json_response(translations)

    async def workflow_templates(self, request):
        templates: Dict[str, List[str]] = {}
        for name, pack in self.packs().items():
            for pattern in ("*example*/*.json", "*workflow*/*.json"):
                for path in sorted(glob.glob(os.path.join(glob.escape(str(pack)), pattern))):
                    entry = os.path.splitext(os.path.basename(path))[0]
                    if entry not in templates.get(name, []):
                        templates.setdefault(name, []).append(entry)
        return web.json_response(templates)

    async def model_folders(self, request):
        base = os.path.join(str(self.sim.data_dir), "models")
        return web.json_response([{"name": folder, "folders": [os.path.join(base, folder)]}
                                  for folder in self.sim.model_folders() if folder not in HIDDEN_MODEL_FOLDERS])

    async def model_files(self, request):
        folder = request.match_info["folder"]
        if folder not in self.sim.model_folders():
            return web.Response(status=404)
        stamp = time.time()
        return web.json_response([{"name": name, "pathIndex": 0, "modified": stamp, "created": stamp, "size": 0}
                                  for name in self.sim.model_files(folder)])

    # -- /internal (frontend-only routes of ComfyUI) -------------------------------------------------
    async def folder_paths(self, request):
        base = os.path.join(str(self.sim.data_dir), "models")
        paths = {folder: [os.path.join(base, folder)] for folder in self.sim.model_folders()}
        paths["custom_nodes"] = [str(p.parent) for p in self.sim.custom_nodes[:1]] or [os.path.join(base, "..",
                                                                                                   "custom_nodes")]
        return web.json_response(paths)

    async def internal_files(self, request):
        kind = request.match_info["directory_type"]
        folder = self.sim.dir_for_type(kind)
        if kind not in ("output", "input", "temp") or folder is None:
            return web.json_response({"error": "Invalid directory type"}, status=400)
        entries = [e for e in os.scandir(folder) if e.is_file()]
        entries.sort(key=lambda e: e.stat().st_mtime, reverse=True)
        return web.json_response([e.name for e in entries])

    async def logs(self, request):
        return web.json_response("\n".join(self.sim.log_lines))

    async def logs_raw(self, request):
        entries = [{"t": stamp, "m": line + "\n"} for stamp, line in zip(self.sim.log_stamps, self.sim.log_lines)]
        return web.json_response({"entries": entries, "size": {"cols": 80, "rows": 24}})
