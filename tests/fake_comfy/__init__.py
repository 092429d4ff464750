"""A faithful ComfyUI 0.3.64 simulator (real aiohttp server) for gateway tests and benchmarks.

Usage::

    from tests.fake_comfy import FakeComfy, sample_workflow
    sim = FakeComfy(speed=1.0, node_seconds=0.01)
    await sim.start()            # sim.url, sim.port
    ...
    await sim.stop()

See ``server.FakeComfy`` for the control surface (crash/restart, fail_prompt,
hang_http, garbage_http) and ``workflows`` for ready-made graphs.
"""

from .server import FakeComfy
from .workflows import (
    ksampler_workflow,
    sample_workflow,
    slow_workflow,
    transform_workflow,
    unique_color,
    websocket_image_workflow,
)

__all__ = [
    "FakeComfy", "sample_workflow", "slow_workflow", "ksampler_workflow",
    "transform_workflow", "websocket_image_workflow", "unique_color",
]
