"""The ComfyUI editor at /comfy/: its static files from an online worker, its user data from the store,
and every ComfyUI route the editor calls (under /comfy/ and /comfy/api/) answered for the whole cluster.

With GATEWAY_API_KEYS set, the editor (which cannot add headers to its requests) authenticates with an
HttpOnly, SameSite=Strict cookie that POST /comfy/login sets from a Bearer key; /comfy/ without it shows
a small sign-in page.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote

from ..errors import ComfyError, Unauthorized, WorkerUnavailable
from ..security.tokens import token_matches
from . import guard
from .base import BaseHandler, ComfyHandler
from .guard import EDITOR_COOKIE
from .comfy import comfy_routes, worker_path
from .files import StreamingHandler, file_routes
from .jobs import job_routes
from .ws import ws_routes

logger = logging.getLogger(__name__)

PREFIX = "/comfy"
COOKIE_DAYS = 30  # the editor stays signed in for a month in that browser


class EditorHandler(ComfyHandler):
    """Gives handlers the editor's services."""

    @property
    def editor(self):
        return self.gw.editor

    def query(self) -> dict:
        """The query arguments, one value each."""
        return {k: self.get_query_argument(k) for k in self.request.query_arguments}


class UsersHandler(EditorHandler):
    async def get(self) -> None:
        self.write_json(await self.editor.userdata.users())

    async def post(self) -> None:
        self.write_json(await self.editor.userdata.add_user(self.comfy_json()))


class SettingsHandler(EditorHandler):
    async def get(self, setting_id: str | None = None) -> None:
        if setting_id is None:
            self.write_json(await self.editor.userdata.settings())
        else:
            self.write_json(await self.editor.userdata.setting(setting_id))

    async def post(self, setting_id: str | None = None) -> None:
        body = self.comfy_json()
        await self.editor.userdata.save_settings(body if setting_id is None else {setting_id: body})
        self.write_empty()


class UserDataListHandler(EditorHandler):
    async def get(self) -> None:
        self.write_json(await self.editor.userdata.list_dir(self.query()))


class UserDataV2Handler(EditorHandler):
    async def get(self) -> None:
        self.write_json(await self.editor.userdata.list_v2(self.get_query_argument("path", "")))


class UserDataFileHandler(EditorHandler):
    async def get(self, name: str) -> None:
        answer = await self.editor.userdata.read(name)
        for header, value in answer.headers.items():
            self.set_header(header, value)
        self.finish(answer.body)

    def body_limit(self) -> int:
        """A saved workflow may be bigger than other JSON bodies (editor_file_limit_mb)."""
        return max(self.gw.settings.max_json_body_size, int(self.gw.settings.editor_file_limit_mb * 1024 * 1024))

    async def post(self, name: str) -> None:
        self.write_json(await self.editor.userdata.write(name, self.body, self.query()))

    async def delete(self, name: str) -> None:
        await self.editor.userdata.delete(name)
        self.set_status(204)
        self.finish()


class UserDataMoveHandler(EditorHandler):
    async def post(self, source: str, dest: str) -> None:
        self.write_json(await self.editor.userdata.move(source, dest, self.query()))


class ViewJsonHandler(EditorHandler):
    """A JSON view merged over the online workers (i18n, templates, extensions, models, subgraphs)."""

    def initialize(self, view: str) -> None:
        self.view = view

    async def get(self, *args: str) -> None:
        self.write_json(await getattr(self.editor.views, self.view)(*args))


class FirstAnswerHandler(EditorHandler):
    """An item only some workers may have: the first worker's 200 answer is relayed."""

    async def get(self, *args: str) -> None:
        body, content_type = await self.editor.views.first_answer(worker_path(self.request.path),
                                                                   self.query() or None)
        self.set_header("Content-Type", content_type)
        self.finish(body)


class ApiNotFoundHandler(ComfyHandler):
    """A ComfyUI API route the gateway does not serve (custom nodes' own routes): aiohttp's empty 404."""

    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/octet-stream")
        self.finish()


class StaticHandler(StreamingHandler):
    """The editor's files, relayed from the worker they come from (gateway/editor/static.py)."""

    def initialize(self, fixed: str | None = None, public: bool = False) -> None:
        self.fixed = fixed  # the worker path for a route that names one file
        # The frontend package's own files at the site's root (icons): no key, as the browser sends no
        # cookie there, and they are the same public files in every ComfyUI.
        self.public = public

    def begin(self, status: int, headers: dict) -> None:
        """Start the answer with the worker's status and the headers the gateway passes on."""
        self.set_status(status)
        self.clear_header("Content-Type")
        if status >= 400:
            # The worker's own error answer as it is: with the gateway's nosniff, the editor's optional
            # user.css (a 404 on a fresh install) would be logged as a refused stylesheet.
            self.clear_header("X-Content-Type-Options")
        for name, value in headers.items():
            self.set_header(name, value)

    async def chunk(self, data: bytes) -> None:
        """Pass part of the body on."""
        await self._relay(data)

    async def get(self, path: str = "") -> None:
        await self._serve(path, head=False)

    async def head(self, path: str = "") -> None:
        await self._serve(path, head=True)

    def _worker_path(self) -> str:
        if self.fixed:
            return self.fixed
        path = self.request.path
        return path[len(PREFIX):] if path.startswith(PREFIX + "/") else path

    async def _serve(self, path: str, head: bool) -> None:
        if "\\" in path or ".." in unquote(path).split("/"):
            raise ComfyError(404, b"")
        if not self.public and not guard.key_scope(self.gw.settings, self.token):
            if self.request.path == PREFIX + "/":
                self._page("sign_in.html", 401)
                return
            raise Unauthorized("sign in at /comfy/ first (the editor needs an API key)")
        try:
            await self.editor_static.serve(self._worker_path(), dict(self.request.headers), self, head)
        except WorkerUnavailable:
            if self.request.path != PREFIX + "/":
                raise
            self._page("no_worker.html", 503)
            return
        await self._drain()
        self.finish()

    @property
    def editor_static(self):
        return self.gw.editor.static

    def prepare(self) -> None:
        # Reads only (GET/HEAD). The API key is checked in _serve: /comfy/ without one answers with the
        # sign-in page.
        self.token = guard.presented_token(self)

    def _page(self, name: str, status: int) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish((Path(self.gw.ui_dir) / "editor" / name).read_bytes())


class LoginHandler(BaseHandler):
    """POST /comfy/login with 'Authorization: Bearer KEY': the editor's cookie; DELETE forgets it."""

    json_routes = False  # the sign-in sends no body

    async def post(self) -> None:
        settings = self.gw.settings
        allowed = settings.api_keys + ((settings.admin_token,) if settings.admin_token else ())
        token = self.token if self.request.headers.get("Authorization") else None
        if allowed and not token_matches(token, allowed):
            raise Unauthorized("that is not one of the gateway's API keys")
        if allowed:
            self.set_cookie(EDITOR_COOKIE, token, path=PREFIX + "/", httponly=True, samesite="Strict",
                            secure=self.request.protocol == "https", expires_days=COOKIE_DAYS)
        self.write_json({"signed_in": True, "key_required": bool(allowed)})

    async def delete(self) -> None:
        self.clear_cookie(EDITOR_COOKIE, path=PREFIX + "/")
        self.set_status(204)
        self.finish()


class RedirectHandler(BaseHandler):
    """/comfy -> /comfy/: the editor loads everything relative to its folder."""

    def prepare(self) -> None:
        self.redirect(PREFIX + "/", permanent=True)


def _both(route: str, handler: type, **kwargs) -> list:
    """A route at /comfy/X and /comfy/api/X, as ComfyUI serves every route twice."""
    return [(PREFIX + route, handler, kwargs), (PREFIX + "/api" + route, handler, kwargs)]


def _prefixed(routes: list) -> list:
    return [(PREFIX + route[0], *route[1:]) for route in routes]


def editor_routes() -> list:
    """Routes of this module; the static relay last under /comfy/."""
    return [
        (PREFIX, RedirectHandler),
        (PREFIX + "/login", LoginHandler),
        *_both(r"/users", UsersHandler),
        *_both(r"/settings", SettingsHandler),
        *_both(r"/settings/([^/]+)", SettingsHandler),
        *_both(r"/userdata", UserDataListHandler),
        *_both(r"/v2/userdata", UserDataV2Handler),
        *_both(r"/userdata/([^/]+)", UserDataFileHandler),
        *_both(r"/userdata/([^/]+)/move/([^/]+)", UserDataMoveHandler),
        *_both(r"/i18n", ViewJsonHandler, view="i18n"),
        *_both(r"/workflow_templates", ViewJsonHandler, view="workflow_templates"),
        *_both(r"/extensions", ViewJsonHandler, view="extensions"),
        *_both(r"/global_subgraphs", ViewJsonHandler, view="global_subgraphs"),
        *_both(r"/experiment/models", ViewJsonHandler, view="model_folders"),
        *_both(r"/experiment/models/([^/]+)", ViewJsonHandler, view="model_files"),
        *_both(r"/experiment/models/preview/(.+)", FirstAnswerHandler),
        *_both(r"/global_subgraphs/([^/]+)", FirstAnswerHandler),
        *_both(r"/view_metadata/([^/]+)", FirstAnswerHandler),
        *_prefixed(job_routes()),
        *_prefixed(comfy_routes()),
        *_prefixed(file_routes()),
        *_prefixed(ws_routes()),
        (PREFIX + r"/api/workflow_templates/(.+)", StaticHandler),
        (PREFIX + r"/api/.*", ApiNotFoundHandler),
        (PREFIX + r"/(.*)", StaticHandler),
        # The editor asks for its icons at the site's root (/assets/favicon.ico, /assets/images/...).
        (r"/(assets/.*)", StaticHandler, {"public": True}),
        (r"/favicon.ico", StaticHandler, {"fixed": "/assets/favicon.ico", "public": True}),
    ]

