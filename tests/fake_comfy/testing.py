"""Client-side helpers for tests: a WebSocket frame recorder and trace normalisation.

These work against any ComfyUI-compatible server (the simulator, a real
ComfyUI, or the gateway), so gateway tests can reuse them.

* :class:`WsRecorder` reads a socket in the background and keeps every frame
  (text frames parsed, binary frames summarised like the reference traces).
* :func:`summarize_binary` decodes the 4-byte event type and its header.
* :class:`Normalizer` rewrites prompt ids, client ids, timestamps, tracebacks
  and folder paths to the ``<placeholders>`` used in /work/shared/comfyui-traces.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, Callable, Dict, List, Optional

import aiohttp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def summarize_binary(data: bytes) -> Dict[str, Any]:
    """Summarise a binary frame as the traces do (event_type, header, payload_len)."""
    (event_type,) = struct.unpack(">I", data[:4])
    out: Dict[str, Any] = {"binary": True, "event_type": event_type}
    if event_type == 1:
        (image_type,) = struct.unpack(">I", data[4:8])
        out["header"] = {"image_type": image_type}
        payload = data[8:]
    elif event_type == 4:
        (mlen,) = struct.unpack(">I", data[4:8])
        out["header"] = {"metadata_length": mlen,
                         "metadata": json.loads(data[8:8 + mlen].decode())}
        payload = data[8 + mlen:]
    elif event_type == 3:
        (nlen,) = struct.unpack(">I", data[4:8])
        out["header"] = {"node_id": data[8:8 + nlen].decode()}
        payload = data[8 + nlen:]
        out["text"] = payload.decode()
    else:
        payload = data[4:]
    out["payload_len"] = len(payload)
    out["payload_is_png"] = payload.startswith(PNG_SIGNATURE)
    return out


class WsRecorder:
    """Background reader of one ComfyUI WebSocket."""

    def __init__(self, session: aiohttp.ClientSession, url: str, **kwargs):
        self.session = session
        self.url = url
        self.kwargs = kwargs
        self.frames: List[Any] = []
        self.ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._task: Optional[asyncio.Task] = None
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()

    async def __aenter__(self) -> "WsRecorder":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self, first_frame: bool = True) -> "WsRecorder":
        """Connect and (by default) wait for the initial status frame."""
        self.ws = await self.session.ws_connect(self.url, **self.kwargs)
        self._task = asyncio.ensure_future(self._reader())
        if first_frame:
            await self.wait_for(lambda f: True)
        return self

    async def _reader(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.frames.append(json.loads(msg.data))
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.frames.append(summarize_binary(msg.data))
                self._changed.set()
        finally:
            self.closed.set()
            self._changed.set()

    async def send_json(self, data) -> None:
        assert self.ws is not None
        await self.ws.send_json(data)

    async def wait_for(self, pred: Callable[[Any], bool], timeout: float = 10.0,
                       start: int = 0) -> Any:
        """Wait until a frame at index >= start satisfies ``pred``; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for frame in self.frames[start:]:
                if pred(frame):
                    return frame
            if self.closed.is_set():
                raise ConnectionError("websocket closed while waiting")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no matching frame; got {self.types()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def wait_done(self, prompt_id: str, timeout: float = 10.0) -> Any:
        """Wait for ``executing`` with ``node: null`` for ``prompt_id``."""
        return await self.wait_for(lambda f: is_done(f, prompt_id), timeout)

    def types(self) -> List[str]:
        return [frame_type(f) for f in self.frames]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 2)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()


def frame_type(frame) -> str:
    """``"status"``, ``"executing"``, ... or ``"binary:<event type>"``."""
    if frame.get("binary"):
        return f"binary:{frame['event_type']}"
    return frame.get("type")


def is_done(frame, prompt_id: Optional[str] = None) -> bool:
    """True for the completion marker ``executing(node: null)``."""
    if frame.get("type") != "executing":
        return False
    data = frame.get("data", {})
    return data.get("node") is None and (prompt_id is None or data.get("prompt_id") == prompt_id)


class Normalizer:
    """Rewrite live values to the trace placeholders."""

    def __init__(self, paths: Optional[Dict[str, str]] = None):
        self.ids: Dict[str, str] = {}
        self.paths = paths or {}

    def name(self, value: str, placeholder: str) -> None:
        """Map ``value`` to ``placeholder`` (e.g. a prompt id to ``<prompt_id_1>``)."""
        self.ids[value] = placeholder

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            out = {}
            for key, value in obj.items():
                key = self(key) if isinstance(key, str) else key
                if key == "timestamp" and isinstance(value, int):
                    out[key] = 0
                elif key == "traceback" and isinstance(value, list):
                    out[key] = ["<traceback>"]
                else:
                    out[key] = self(value)
            return out
        if isinstance(obj, list):
            return [self(v) for v in obj]
        if isinstance(obj, str):
            if obj in self.ids:
                return self.ids[obj]
            for real, placeholder in self.paths.items():
                obj = obj.replace(real, placeholder)
            return obj
        return obj


def shape(obj: Any) -> Any:
    """Structure of a JSON value: dict keys (in order) and leaf type names."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(v) for v in obj]
    if obj is None:
        return "null"
    return type(obj).__name__
