"""The ComfyUI simulator (same CLI as ``python -m tests.fake_comfy``) plus "tap" sockets, for bench/relay.py.

A WebSocket that connects with a clientId starting with ``benchtap-`` receives, in addition to the
broadcasts every socket gets, a copy of every frame the simulator sends to one particular client (such
as the gateway's monitor, which submits every job under its own client id). The copy is sent by the
same publisher, just before the real frame, so a tap is a direct connection to the worker that sees
exactly what the gateway sees, and no later: comparing a frame's arrival on a tap and on a gateway
client gives the latency the gateway adds (slightly over-, never under-estimated).

The simulator's code is not changed: only its publisher method is replaced in this process.
"""

from __future__ import annotations

from _common import REPO  # noqa: F401  (puts the repo on sys.path)

from tests.fake_comfy import wshub
from tests.fake_comfy.__main__ import main

TAP_PREFIX = "benchtap-"


async def _publisher(self) -> None:
    while True:
        kind, message, sid = await self._queue.get()
        if sid is None:
            targets = list(self.sockets.values())
        elif sid in self.sockets:
            taps = [ws for s, ws in self.sockets.items() if s.startswith(TAP_PREFIX) and s != sid]
            targets = taps + [self.sockets[sid]]
        else:
            targets = [ws for s, ws in self.sockets.items() if s.startswith(TAP_PREFIX)]
        for ws in targets:
            await self._deliver(ws, kind, message)


wshub.WsHub._publisher = _publisher

if __name__ == "__main__":
    main()
