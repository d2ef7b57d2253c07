"""How long a target asks the bridge to wait, read from its answer's headers."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx

from scim_bridge.targets.http import retry_after_seconds


def test_retry_after_in_seconds_is_taken_as_it_is() -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0


def test_a_rate_limit_reset_date_becomes_the_seconds_until_then() -> None:
    reset = formatdate(time.time() + 30, usegmt=True)
    wait = retry_after_seconds(httpx.Response(429, headers={"X-FeatureRateLimit-Reset": reset}))
    assert wait is not None and 28 < wait <= 30


def test_a_reset_header_sent_twice_counts_by_its_first_value_not_by_the_joined_text() -> None:
    first, second = formatdate(time.time() + 30, usegmt=True), formatdate(time.time() + 3000, usegmt=True)
    response = httpx.Response(429, headers=[("X-FeatureRateLimit-Reset", first), ("X-FeatureRateLimit-Reset", second)])
    wait = retry_after_seconds(response)
    assert wait is not None and 28 < wait <= 30


def test_an_answer_without_any_wait_says_none() -> None:
    assert retry_after_seconds(httpx.Response(503)) is None
