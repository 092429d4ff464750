"""Shared fixtures: simulators (tests.fake_comfy.fixtures) and a gateway cluster on loopback."""

from __future__ import annotations

import pytest

from tests.harness import Cluster

pytest_plugins = ["tests.fake_comfy.fixtures"]


@pytest.fixture
async def cluster(tmp_path):
    """A started gateway with no workers; tests add simulators with cluster.add_sim()."""
    c = Cluster(tmp_path / "gw")
    await c.start()
    yield c
    await c.stop()
