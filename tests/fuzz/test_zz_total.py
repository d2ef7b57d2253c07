"""Runs last among the fuzz tests (pytest orders files by name): the run's request count."""

from __future__ import annotations

import time

import pytest

from tests.fuzz.harness import REPLAY, REQUIRED_REQUESTS, SEED, TALLY, announce

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]  # deselected with the slow tests it counts


def test_the_fuzz_run_sent_at_least_20000_generated_requests(request: pytest.FixtureRequest) -> None:
    fuzz_items = [item for item in request.session.items if "tests/fuzz/" in item.nodeid and item is not request.node]
    line = (
        f"fuzz: {TALLY.generated} generated requests (+{TALLY.verifying} verifying reads) "
        f"in {TALLY.tests_run} tests and {time.monotonic() - TALLY.started:.0f} s, seed {SEED}"
    )
    announce(request.config, "\n" + line)
    if TALLY.tests_run < len(fuzz_items):
        pytest.skip(f"only part of the fuzz tests ran ({TALLY.tests_run} of {len(fuzz_items)}): {line}")
    assert TALLY.generated >= REQUIRED_REQUESTS, f"{line}; replay: {REPLAY}"
