"""A fresh simulator per test (its own ports, tasks and faults) and an HTTP client holding a bearer key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.unit.simulator.support import AUTH
from vidrelay.simulator.server import Simulator

SIM_SECONDS = 0.6  # long enough to see each status, short enough for many tests
CONTENT_400_WINDOW = 0.5


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(port=0, sim_seconds=SIM_SECONDS, content_400_window=CONTENT_400_WINDOW).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def api(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers=AUTH, timeout=30) as client:
        yield client
