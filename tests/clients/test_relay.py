"""The client hub's framing and ordering (pure: connections write into lists)."""

from __future__ import annotations

import asyncio
import json
import struct

from gateway.clients.relay import BROADCAST_SLICE, ClientConnection, ClientHub, ws_frame


def decode_frames(data: bytes) -> list:
    """Split unmasked server frames into (opcode, payload) pairs."""
    frames = []
    while data:
        first, length = data[0], data[1] & 0x7F
        offset = 2
        if length == 126:
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        assert data[1] & 0x80 == 0, "server frames are not masked"
        frames.append((first, data[offset:offset + length]))
        data = data[offset + length:]
    return frames


def test_frames_have_the_right_opcode_and_length_encoding():
    for size in (0, 125, 126, 65535, 65536, 300000):
        text = "x" * size
        assert decode_frames(ws_frame(text)) == [(0x81, text.encode())]
        assert decode_frames(ws_frame(b"\1" * size)) == [(0x82, b"\1" * size)]
    assert decode_frames(ws_frame("é")) == [(0x81, "é".encode())]


class Sink:
    """A connection's socket: what was written, in order; can refuse (gone or too slow)."""

    def __init__(self, accept: bool = True):
        self.data = b""
        self.writes = 0
        self.accept = accept

    def write(self, frame: bytes) -> bool:
        if self.accept:
            self.data += frame
            self.writes += 1
        return self.accept

    def messages(self) -> list:
        return [payload.decode() for _, payload in decode_frames(self.data)]


async def test_a_broadcast_is_written_in_slices_and_keeps_each_clients_order():
    hub = ClientHub(lambda: 0)
    sinks = [Sink() for _ in range(3 * BROADCAST_SLICE + 1)]
    for i, sink in enumerate(sinks):
        hub.register(ClientConnection(f"c{i}", sink.write))
    hub.broadcast(json.dumps({"type": "status", "n": 1}))
    assert all(sink.writes == 0 for sink in sinks), "nothing is written inside broadcast()"
    last = hub.get(f"c{len(sinks) - 1}")
    last.put(json.dumps({"type": "progress"}))  # arrives before its slice: still after the broadcast
    assert sinks[-1].messages() == ['{"type": "status", "n": 1}', '{"type": "progress"}']
    assert sinks[-1].writes == 1, "held and new frames go out in one write"
    await asyncio.sleep(0)
    assert sum(1 for sink in sinks if sink.writes) == BROADCAST_SLICE + 1, "one slice per loop turn"
    for _ in range(5):
        await asyncio.sleep(0)
    assert all(sink.messages()[0] == '{"type": "status", "n": 1}' for sink in sinks)
    assert all(len(sink.messages()) == 1 for sink in sinks[:-1])


async def test_a_client_that_refuses_a_write_is_closed_and_gets_nothing_more():
    hub = ClientHub(lambda: 0)
    gone, alive = Sink(accept=False), Sink()
    hub.register(ClientConnection("gone", gone.write))
    hub.register(ClientConnection("alive", alive.write))
    hub.broadcast("one")
    await asyncio.sleep(0)
    assert hub.get("gone").closed and not hub.get("alive").closed
    gone.accept = True
    hub.broadcast("two")
    hub.get("gone").put("three")
    await asyncio.sleep(0)
    assert gone.data == b"" and alive.messages() == ["one", "two"]
