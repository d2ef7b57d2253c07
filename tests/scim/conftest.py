from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.live import LiveBridge

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def bridge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBridge]:
    """One live bridge per test module and backend; tests use unique names, so they share it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('scim')}/bridge.db"
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()  # our own throwaway server (tests/conftest.py)
    with LiveBridge(url) as live:
        yield live


@pytest.fixture
def scim(bridge: LiveBridge) -> Iterator[httpx.Client]:
    with bridge.client() as client:
        yield client


def unique(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def new_user(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {
        "schemas": [USER],
        "userName": unique(),
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": unique("mail"), "type": "work", "primary": True}],
        "active": True,
        **fields,
    }
    response = client.post("/Users", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def new_group(client: httpx.Client, members: list[str] = (), **fields: Any) -> dict[str, Any]:  # type: ignore[assignment]
    body = {"schemas": [GROUP], "displayName": unique("group"), "members": [{"value": m} for m in members], **fields}
    response = client.post("/Groups", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def patch_ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}
