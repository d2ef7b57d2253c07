from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from scim_bridge.targets.registry import TARGETS
from tests.targets.harness import HARNESSES, Harness


@pytest.fixture(params=sorted(TARGETS))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Every registered target, its translator built by the registry, against its emulator over HTTP.
    A registered target without a Harness fails here: the contract is not optional."""
    assert request.param in HARNESSES, f"target {request.param!r} has no contract Harness (tests/targets/harness.py)"
    with HARNESSES[request.param]().serve() as ready:
        try:
            yield ready
        finally:
            await ready.target.close()
