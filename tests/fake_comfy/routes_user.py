"""The editor's per-user routes (§2, §12): /users, /settings, /userdata and /v2/userdata.

Single-user mode, as ComfyUI 0.3.64 runs by default: every request is user "default", whose
files live in ``<data_dir>/user/default``. Settings are the file ``comfy.settings.json`` there.
Statuses and bodies follow ComfyUI's UserManager and AppSettings: text bodies on errors, 404 for a
missing folder or file, 409 when ``overwrite=false`` meets an existing file, 204 on delete.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import re
import tempfile
import uuid
from urllib import parse

from aiohttp import web

USER = "default"
SETTINGS_FILE = "comfy.settings.json"


class UserRoutes:
    """Handlers bound to one FakeComfy."""

    def __init__(self, sim):
        self.sim = sim

    def register(self, add):
        add("GET", "/users", self.get_users)
        add("POST", "/users", self.post_users)
        add("GET", "/settings", self.get_settings)
        add("GET", "/settings/{id}", self.get_setting)
        add("POST", "/settings", self.post_settings)
        add("POST", "/settings/{id}", self.post_setting)
        add("GET", "/userdata", self.list_userdata)
        add("GET", "/v2/userdata", self.list_userdata_v2)
        add("GET", "/userdata/{file}", self.get_userdata)
        add("POST", "/userdata/{file}", self.post_userdata)
        add("DELETE", "/userdata/{file}", self.delete_userdata)
        add("POST", "/userdata/{file}/move/{dest}", self.move_userdata)

    # -- paths ------------------------------------------------------------------
    @property
    def user_root(self) -> str:
        return os.path.abspath(os.path.join(self.sim.data_dir, "user", USER))

    def user_path(self, file, create_dir: bool = True):
        """Absolute path of a user file, or None when it would leave the user's folder."""
        root = self.user_root
        path = root
        if file is not None:
            if "%" in file:
                file = parse.unquote(file)
            path = os.path.abspath(os.path.join(root, file))
            if os.path.commonpath((root, path)) != root:
                return None
        parent = os.path.split(path)[0]
        if create_dir and not os.path.exists(parent):
            os.makedirs(parent, exist_ok=True)
        return path

    def _checked(self, request, param="file", must_exist=False):
        file = request.match_info.get(param)
        if not file:
            return web.Response(status=400)
        path = self.user_path(file)
        if not path:
            return web.Response(status=403)
        if must_exist and not os.path.exists(path):
            return web.Response(status=404)
        return path

    def _file_info(self, path: str, relative_to: str) -> dict:
        return {"path": os.path.relpath(path, relative_to).replace(os.sep, "/"),
                "size": os.path.getsize(path), "modified": int(os.path.getmtime(path) * 1000),
                "created": int(os.path.getctime(path) * 1000)}

    # -- users and settings --------------------------------------------------------
    async def get_users(self, request):
        return web.json_response({"storage": "server",
                                  "migrated": os.path.exists(self.user_path(None, create_dir=False))})

    async def post_users(self, request):
        name = str((await request.json())["username"])
        if name in self.sim.users.values():
            return web.json_response({"error": "Duplicate username."}, status=400)
        if not name.strip():
            return web.json_response({"error": "username not provided"}, status=400)
        # Single-user mode still records the name (ComfyUI writes users.json) but keeps serving "default".
        user_id = re.sub("[^a-zA-Z0-9-_]+", "-", name.strip()) + "_" + str(uuid.uuid4())
        self.sim.users[user_id] = name.strip()
        return web.json_response(user_id)

    def _settings(self) -> dict:
        path = self.user_path(SETTINGS_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        return {}

    def _save_settings(self, settings: dict) -> None:
        with open(self.user_path(SETTINGS_FILE), "w", encoding="utf-8") as handle:
            handle.write(json.dumps(settings, indent=4))

    async def get_settings(self, request):
        return web.json_response(self._settings())

    async def get_setting(self, request):
        return web.json_response(self._settings().get(request.match_info["id"]))

    async def post_settings(self, request):
        new = await request.json()
        self._save_settings({**self._settings(), **new})
        return web.Response(status=200)

    async def post_setting(self, request):
        settings = self._settings()
        settings[request.match_info["id"]] = await request.json()
        self._save_settings(settings)
        return web.Response(status=200)

    # -- user files ---------------------------------------------------------------------
    async def list_userdata(self, request):
        query = request.rel_url.query
        directory = query.get("dir", "")
        if not directory:
            return web.Response(status=400, text="Directory not provided")
        path = self.user_path(directory)
        if not path:
            return web.Response(status=403, text="Invalid directory")
        if not os.path.exists(path):
            return web.Response(status=404, text="Directory not found")
        recurse = query.get("recurse", "").lower() == "true"
        full_info = query.get("full_info", "").lower() == "true"
        split = query.get("split", "").lower() == "true"
        pattern = os.path.join(glob.escape(path), "**", "*") if recurse else os.path.join(glob.escape(path), "*")
        results = []
        for full in glob.glob(pattern, recursive=recurse):
            if not os.path.isfile(full):
                continue
            if full_info:
                results.append(self._file_info(full, path))
                continue
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            results.append([rel] + rel.split("/") if split else rel)
        return web.json_response(results)

    async def list_userdata_v2(self, request):
        rel = parse.unquote(request.rel_url.query.get("path", ""))
        base = self.user_path(None, create_dir=False)
        target = self.user_path(rel, create_dir=False) if rel else base
        if not target:
            return web.Response(status=400, text="Invalid path requested")
        if not os.path.exists(target):
            if target == base:
                return web.json_response([])
            return web.Response(status=404, text="Requested path not found")
        if not os.path.isdir(target):
            return web.Response(status=400, text="Requested path is not a directory")
        results = []
        for root, dirs, files in os.walk(target, topdown=True):
            for name in dirs:
                results.append({"name": name, "path": os.path.relpath(os.path.join(root, name), base)
                                .replace(os.sep, "/"), "type": "directory"})
            for name in files:
                full = os.path.join(root, name)
                stats = os.stat(full)
                results.append({"name": name, "path": os.path.relpath(full, base).replace(os.sep, "/"),
                                "type": "file", "size": stats.st_size, "modified": stats.st_mtime})
        results.sort(key=lambda item: (item["type"] != "directory", item["name"].lower()))
        return web.json_response(results)

    async def get_userdata(self, request):
        path = self._checked(request, must_exist=True)
        if not isinstance(path, str):
            return path
        return web.FileResponse(path)

    async def post_userdata(self, request):
        path = self._checked(request)
        if not isinstance(path, str):
            return path
        overwrite = request.query.get("overwrite", "true") != "false"
        full_info = request.query.get("full_info", "false").lower() == "true"
        if not overwrite and os.path.exists(path):
            return web.Response(status=409, text="File already exists")
        body = await request.read()
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(tmp, path)
        except OSError:
            return web.Response(status=400, reason="Invalid filename")
        root = self.user_path(None)
        return web.json_response(self._file_info(path, root) if full_info else os.path.relpath(path, root))

    async def delete_userdata(self, request):
        path = self._checked(request, must_exist=True)
        if not isinstance(path, str):
            return path
        os.remove(path)
        return web.Response(status=204)

    async def move_userdata(self, request):
        source = self._checked(request, must_exist=True)
        if not isinstance(source, str):
            return source
        dest = self._checked(request, param="dest")
        if not isinstance(dest, str):
            return dest
        overwrite = request.query.get("overwrite", "true") != "false"
        full_info = request.query.get("full_info", "false").lower() == "true"
        if not overwrite and os.path.exists(dest):
            return web.Response(status=409, text="File already exists")
        shutil.move(source, dest)
        root = self.user_path(None)
        return web.json_response(self._file_info(dest, root) if full_info else os.path.relpath(dest, root))
