"""pytest fixtures for tests that need fake ComfyUI backends.

Enable them in a conftest.py with ``pytest_plugins = ["tests.fake_comfy.fixtures"]``
(or import the fixture names).  All fixtures are function-scoped and async
(pytest-asyncio in auto mode).

* ``fake_comfy``: one started :class:`FakeComfy` with default settings.
* ``fake_comfy_factory``: ``await fake_comfy_factory(**kwargs)`` starts more
  simulators (any constructor keyword); all are stopped and cleaned up after
  the test.
"""

from __future__ import annotations

import pytest

from .server import FakeComfy


@pytest.fixture
async def fake_comfy_factory():
    sims = []

    async def make(host: str = "127.0.0.1", port: int = 0, **kwargs) -> FakeComfy:
        sim = FakeComfy(**kwargs)
        sims.append(sim)
        await sim.start(host=host, port=port)
        return sim

    yield make
    for sim in sims:
        await sim.stop()
        sim.cleanup()


@pytest.fixture
async def fake_comfy(fake_comfy_factory):
    return await fake_comfy_factory()
