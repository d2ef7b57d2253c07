"""The front door's request series around tiny inline apps: what is counted when the app raises,
and that counts a scrape reads are exact while they still wait to be folded (metrics.Tally)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from scim_bridge import metrics
from scim_bridge.web.front import FrontDoor


def _count(route: str, status: str) -> float:
    text = generate_latest(metrics.REGISTRY).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "scim_bridge_http_requests_total" and labels["route"] == route:
                if labels["status"] == status:
                    return sample.value
    return 0.0


def _call(app: FrontDoor, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "headers": []}
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_request_whose_app_raises_counts_as_500() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route_template"] = "/test/broken"
        raise RuntimeError("boom")

    before = _count("/test/broken", "500")
    with pytest.raises(RuntimeError):
        _call(FrontDoor(broken, metrics=True, console=False), "/test/broken")
    assert _count("/test/broken", "500") == before + 1


def test_every_answer_is_counted_exactly_across_folds() -> None:
    async def answers(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route_template"] = "/test/answers"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    front = FrontDoor(answers, metrics=True, console=False)
    before = _count("/test/answers", "204")
    for _ in range(metrics.FOLD + 3):  # one fold, and three still waiting when scraped
        assert _call(front, "/test//answers/")[0]["status"] == 204
    assert _count("/test/answers", "204") == before + metrics.FOLD + 3
