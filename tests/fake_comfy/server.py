"""FakeComfy: lifecycle (start/stop/crash/restart) and the shared server context.

All in-memory state (queue, history, counter, node cache, WebSocket clients)
lives in per-process objects recreated on every start, so ``restart()``
behaves like a restarted ComfyUI; files in input/ and output/ persist, temp/
is wiped as ComfyUI does at start-up.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import inspect
import logging
import os
import shutil
import tempfile
import weakref
from collections import deque
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

from aiohttp import web

from .engine import Engine
from .imaging import Img, write_png
from .middleware import build_middlewares
from .nodeset import build_node_set
from .promptqueue import PromptQueue
from .routes_files import FileRoutes, split_annotation
from .routes_frontend import DEFAULT_CUSTOM_NODES, DEFAULT_TEMPLATES, FrontendRoutes, installed_frontend
from .routes_info import MODEL_FOLDERS, InfoRoutes
from .routes_prompt import PromptRoutes
from .routes_user import UserRoutes
from .wshub import WsHub

log = logging.getLogger("fake_comfy")

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
MAX_UPLOAD = 100 * 1024 * 1024
FRONTEND_DEFAULT = object()  # "use the installed comfyui-frontend-package"


class FakeComfy:
    """An in-process aiohttp server that behaves like ComfyUI 0.3.64 on the wire."""

    def __init__(self, speed: float = 1.0, node_seconds: float = 0.01, auth=None,
                 extra_nodes=(), missing_nodes=(), models: Optional[Dict[str, List[str]]] = None,
                 device_name: str = "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
                 vram_total: int = 24 * 1024 ** 3, data_dir=None, example_image: bool = True,
                 frontend_root=FRONTEND_DEFAULT, custom_nodes=DEFAULT_CUSTOM_NODES, templates_root=DEFAULT_TEMPLATES):
        self.speed = float(speed)
        self.node_seconds = float(node_seconds)
        self.auth = tuple(auth) if auth else None
        self.nodes = build_node_set(extra_nodes, missing_nodes)
        self.models: Dict[str, List[str]] = {k: list(v) for k, v in (models or {}).items()}
        self.device_name = device_name
        self.vram_total = int(vram_total)
        self.example_image = example_image
        # The editor's web root: the installed frontend package unless a folder is given (None: none).
        self.frontend_root = installed_frontend() if frontend_root is FRONTEND_DEFAULT else (
            Path(frontend_root) if frontend_root else None)
        self.custom_nodes = [Path(p) for p in custom_nodes or ()]
        self.templates_root = Path(templates_root) if templates_root else None
        self.users: Dict[str, str] = {"default": "default"}
        self.requests: deque = deque(maxlen=2000)  # (method, path with query, headers) of recent requests
        self.log_lines: List[str] = []  # what /internal/logs shows (the start-up line, as ComfyUI logs it)
        self.log_stamps: List[str] = []
        if data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="fake_comfy_"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.data_dir), True)
        else:
            self.data_dir = Path(data_dir)
            self._finalizer = None
        self.input_dir = self.data_dir / "input"
        self.output_dir = self.data_dir / "output"
        self.temp_dir = self.data_dir / "temp"
        self.executed: List[str] = []
        # Every POST /prompt as (time, prompt_id asked for, User-Agent): who sent what, and when.
        self.prompt_posts: List[tuple] = []
        self._hang_http = False
        self._hang_event: Optional[asyncio.Event] = None
        self.garbage_http = False
        self.hanging: set = set()
        self.host: Optional[str] = None
        self.port: Optional[int] = None
        self._fail_rules: List[Union[str, Callable]] = []
        self.file_counters: Dict[tuple, int] = {}
        self._runner: Optional[web.AppRunner] = None
        self.queue = PromptQueue(self)
        self.engine = Engine(self)
        self.hub = WsHub(self)

    # -- public properties ----------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def queue_remaining(self) -> int:
        return self.queue.remaining

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def hang_http(self) -> bool:
        """When True, HTTP requests (incl. the /ws upgrade) are accepted but never answered."""
        return self._hang_http

    @hang_http.setter
    def hang_http(self, value: bool) -> None:
        self._hang_http = bool(value)
        if not value and self._hang_event is not None:
            self._hang_event.set()  # requests still held (client waiting) now proceed
            self._hang_event = None

    def hang_released(self) -> asyncio.Event:
        """Event a hung request waits on; set when ``hang_http`` goes back to False."""
        if self._hang_event is None:
            self._hang_event = asyncio.Event()
        return self._hang_event

    def fail_prompt(self, prompt_id_or_predicate) -> None:
        """Make a prompt fail at runtime (execution_error at its first executed node).

        Accepts a prompt id, or a predicate called as ``pred(prompt_id)`` or, if it
        takes two parameters, ``pred(prompt_id, prompt)``.
        """
        self._fail_rules.append(prompt_id_or_predicate)

    # -- lifecycle ------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "FakeComfy":
        if self._runner is not None:
            raise RuntimeError("already running")
        for d in (self.input_dir, self.output_dir):
            d.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        example = self.input_dir / "example.png"
        if self.example_image and not example.exists():
            write_png(example, Img.solid(8, 8, 1, 0x3C78D8).render())
        self.queue = PromptQueue(self)
        self.engine = Engine(self)
        self.hub = WsHub(self)
        self.file_counters = {}
        app = web.Application(middlewares=build_middlewares(self), client_max_size=MAX_UPLOAD)
        self._register_routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.host = host
        self.port = runner.addresses[0][1]
        self.hub.start()
        self.queue.start()
        log.info("fake ComfyUI listening on %s", self.url)
        self.log_lines.append(f"To see the GUI go to: {self.url}")
        self.log_stamps.append(datetime.datetime.now().isoformat())
        return self

    def _register_routes(self, app: web.Application) -> None:
        def add(method, path, handler):
            for p in (path, "/api" + path):
                if method == "GET":
                    app.router.add_get(p, handler)
                else:
                    app.router.add_route(method, p, handler)

        add("GET", "/ws", self.hub.handle)
        frontend = FrontendRoutes(self)
        for routes in (PromptRoutes(self), FileRoutes(self), InfoRoutes(self), UserRoutes(self), frontend):
            routes.register(add)
        frontend.register_static(app)  # after every API route, as ComfyUI mounts its web root last

    async def stop(self) -> None:
        """Graceful shutdown: close sockets politely, stop the worker, free the port."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await self.queue.stop()
        self._cancel_hanging()
        await self.hub.stop(graceful=True)
        await runner.cleanup()
        log.info("fake ComfyUI on port %s stopped", self.port)

    async def crash(self) -> None:
        """Abrupt death: listening socket and every connection closed at once, job abandoned."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        for site in list(runner.sites):
            server = getattr(site, "_server", None)
            if server is not None:
                server.close()
        web_server = runner.server
        transports = list(getattr(web_server, "_connections", {}).values()) if web_server else []
        for transport in transports:
            transport.abort()
        await self.queue.stop()
        self._cancel_hanging()
        await self.hub.stop(graceful=False)
        await runner.cleanup()
        log.info("fake ComfyUI on port %s crashed", self.port)

    async def restart(self) -> "FakeComfy":
        """Start again on the same host/port with fresh in-memory state."""
        if self._runner is not None:
            await self.crash()
        for _ in range(50):
            try:
                return await self.start(self.host or "127.0.0.1", self.port or 0)
            except OSError:
                await asyncio.sleep(0.05)
        return await self.start(self.host or "127.0.0.1", self.port or 0)

    def cleanup(self) -> None:
        """Remove an automatically created data dir now (also done at garbage collection/exit)."""
        if self._finalizer is not None:
            self._finalizer()

    def _cancel_hanging(self) -> None:
        for task in list(self.hanging):
            task.cancel()
        self.hanging.clear()
        self._hang_event = None

    # -- context used by validation, routes and nodes ---------------------------
    def dir_for_type(self, kind) -> Optional[Path]:
        return {"input": self.input_dir, "output": self.output_dir, "temp": self.temp_dir}.get(kind)

    def input_image_files(self) -> List[str]:
        try:
            names = os.listdir(self.input_dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if (self.input_dir / n).is_file()
                      and os.path.splitext(n)[1].lower() in IMAGE_EXTS)

    def resolve_input_path(self, name: str) -> Path:
        name, kind = split_annotation(str(name))
        return (self.dir_for_type(kind or "input") or self.input_dir) / name

    def input_file_exists(self, name) -> bool:
        if not isinstance(name, str) or ".." in name or name.startswith("/"):
            return False
        return self.resolve_input_path(name).is_file()

    def input_file_hash(self, name: str) -> str:
        try:
            return hashlib.sha256(self.resolve_input_path(name).read_bytes()).hexdigest()
        except OSError:
            return "missing"

    def model_folders(self) -> List[str]:
        return MODEL_FOLDERS + [k for k in self.models if k not in MODEL_FOLDERS]

    def model_files(self, folder: str) -> List[str]:
        return sorted(self.models.get(folder, []))

    def should_fail(self, prompt_id: str, prompt: dict) -> bool:
        for rule in self._fail_rules:
            if isinstance(rule, str):
                if rule == prompt_id:
                    return True
            elif callable(rule):
                try:
                    nparams = len(inspect.signature(rule).parameters)
                except (TypeError, ValueError):
                    nparams = 1
                if rule(prompt_id, prompt) if nparams >= 2 else rule(prompt_id):
                    return True
        return False
