"""GET /metrics over real HTTP, on both stores: who may scrape it, and what a SCIM request moves.

The counters are per process and the tests share one, so each assertion compares a scrape after
the action with one before it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import TOKEN, LiveBridge
from tests.metrics_scrape import scrape, value
from tests.scim.test_scopes import credentials

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ADMIN = "admin-token-for-metrics-tests"


@pytest.fixture
def bridge(bridge_store_url: str, tmp_path: Path) -> Iterator[LiveBridge]:
    with LiveBridge(bridge_store_url, admin_tokens=[ADMIN]) as live:
        yield live


def test_metrics_need_the_metrics_scope_or_admin(bridge: LiveBridge) -> None:
    url = f"{bridge.root}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    refused = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})  # a SCIM credential
    assert refused.status_code == 403 and "needs the metrics scope" in refused.text
    scraper = credentials(bridge.settings.store, "create-token", "prometheus", "--scope", "metrics")
    assert httpx.get(url, headers={"Authorization": f"Bearer {scraper}"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
    # the scrape credential opens nothing else
    assert httpx.get(f"{bridge.base}/Users", headers={"Authorization": f"Bearer {scraper}"}).status_code == 403
    assert (
        httpx.get(f"{bridge.root}/admin/api/queue", headers={"Authorization": f"Bearer {scraper}"}).status_code == 403
    )


def test_a_scim_write_moves_the_request_and_write_counters_by_route_template(bridge: LiveBridge) -> None:
    before, _ = scrape(bridge.root, ADMIN)
    with bridge.client() as scim:
        created = scim.post("/Users", json={"schemas": [USER], "userName": "mira@example.com"})
        assert created.status_code == 201
        scim_id = created.json()["id"]
        assert scim.get(f"/Users/{scim_id}").status_code == 200
        assert scim.post("/Users", json={"schemas": [USER], "userName": "mira@example.com"}).status_code == 409
        assert scim.delete(f"/Users/{scim_id}").status_code == 204
        assert scim.get("/NoSuchEndpoint/x").status_code == 404
    after, _ = scrape(bridge.root, ADMIN)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    post = {"method": "POST", "route": "/scim/v2/Users"}
    assert moved("scim_bridge_http_requests_total", **post, status="201") == 1
    assert moved("scim_bridge_http_requests_total", **post, status="409") == 1
    assert moved("scim_bridge_http_request_duration_seconds_count", **post, status="201") == 1
    one = {"route": "/scim/v2/Users/{id}"}
    assert moved("scim_bridge_http_requests_total", method="GET", status="200", **one) == 1
    assert moved("scim_bridge_http_requests_total", method="DELETE", status="204", **one) == 1
    assert moved("scim_bridge_http_requests_total", route="unmatched", status="404") == 1
    assert moved("scim_bridge_scim_writes_total", resource="Users", operation="create", outcome="ok") == 1
    assert moved("scim_bridge_scim_writes_total", resource="Users", operation="create", outcome="refused") == 1
    assert moved("scim_bridge_scim_writes_total", resource="Users", operation="delete", outcome="ok") == 1
    assert moved("scim_bridge_scim_writes_total", operation="replace") == 0  # the GET was no write
    # ids never become labels: the label values are route templates only
    assert not any(scim_id in label for _, labels in after for _, label in labels)
    # a scrape is a request too, under its own route
    assert moved("scim_bridge_http_requests_total", route="/metrics", status="200") >= 1


def test_the_queue_gauges_are_read_from_the_store(bridge: LiveBridge) -> None:
    # No sync worker here: the change stays queued, and its age grows.
    with bridge.client() as scim:
        assert scim.post("/Users", json={"schemas": [USER], "userName": "noor@example.com"}).status_code == 201
    time.sleep(1.0)
    samples, _ = scrape(bridge.root, ADMIN)
    assert value(samples, "scim_bridge_queue_depth", lane="standard") == 1
    assert value(samples, "scim_bridge_queue_depth", lane="revocation") == 0
    assert value(samples, "scim_bridge_queue_oldest_age_seconds", lane="standard") >= 0.9
    assert value(samples, "scim_bridge_queue_oldest_age_seconds", lane="revocation") == 0
    assert value(samples, "scim_bridge_store_up") == 1
    assert value(samples, "scim_bridge_dead_letters") == 0
    assert value(samples, "scim_bridge_audit_pending_entries") >= 0


def test_metrics_off_serves_no_endpoint_and_counts_nothing(tmp_path: Path) -> None:
    # SCIM_BRIDGE_METRICS=off (the front-door benchmark's baseline): no /metrics, and SCIM still works
    with LiveBridge(f"sqlite:///{tmp_path}/off.db", admin_tokens=[ADMIN], metrics=False) as off:
        with off.client() as scim:
            assert scim.post("/Users", json={"schemas": [USER], "userName": "off@example.com"}).status_code == 201
        assert httpx.get(f"{off.root}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404
