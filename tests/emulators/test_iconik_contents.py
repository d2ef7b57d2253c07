"""The iconik emulator's assets and collection contents over real HTTP, against iconik's own schemas,
and the webhooks they send (what reviewer routing reads)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from scim_bridge.emulators import iconik
from tests.emulators.live import LiveApp
from tests.emulators.live import serve_iconik as serve
from tests.emulators.spec import assert_matches
from tests.emulators.test_iconik_assets import Receiver

ASSETS = "iconik/assets.json"


@pytest.fixture
def api() -> Iterator[tuple[httpx.Client, iconik.IconikState]]:
    yield from serve()


def test_an_asset_made_into_a_collection_lists_it_and_reads_back_where_it_sits(api: tuple) -> None:
    client, state = api
    masters = client.post("/assets/v1/collections/", json={"title": "Brand Masters"}).json()["id"]
    made = client.post(
        "/assets/v1/assets/?assign_to_collection=true", json={"title": "m.mov", "collection_id": masters}
    )
    assert made.status_code == 201, made.text
    assert_matches(ASSETS, "/v1/assets/", "post", 201, made.json())
    asset = made.json()["id"]
    read = client.get(f"/assets/v1/assets/{asset}/")
    assert_matches(ASSETS, "/v1/assets/{asset_id}/", "get", 200, read.json())
    assert read.json()["in_collections"] == [masters]
    listed = client.get(f"/assets/v1/collections/{masters}/contents/")
    assert_matches(ASSETS, "/v1/collections/{collection_id}/contents/", "get", 200, listed.json())
    assert [o["id"] for o in listed.json()["objects"]] == [asset]
    # without assign_to_collection the body's collection_id is not acted on (the spec's default: false)
    loose = client.post("/assets/v1/assets/", json={"title": "loose.mov", "collection_id": masters}).json()
    assert loose["in_collections"] == []


def test_contents_refuse_what_the_spec_requires_and_remove_what_they_hold(api: tuple) -> None:
    client, _ = api
    masters = client.post("/assets/v1/collections/", json={"title": "Brand Masters"}).json()["id"]
    asset = client.post("/assets/v1/assets/", json={"title": "m.mov"}).json()["id"]
    assert client.post("/assets/v1/assets/", json={}).status_code == 400  # title is required
    assert client.post(f"/assets/v1/collections/{masters}/contents/", json={"object_id": asset}).status_code == 400
    assert (
        client.post(
            "/assets/v1/collections/nope/contents/", json={"object_id": asset, "object_type": "assets"}
        ).status_code
        == 404
    )
    body = {"object_id": asset, "object_type": "assets"}
    assert client.post(f"/assets/v1/collections/{masters}/contents/", json=body).status_code == 201
    assert client.get(f"/assets/v1/assets/{asset}/").json()["in_collections"] == [masters]
    assert client.delete(f"/assets/v1/collections/{masters}/contents/assets/{asset}/").status_code == 204
    assert client.get(f"/assets/v1/assets/{asset}/").json()["in_collections"] == []
    assert client.post("/assets/v1/assets/nope/approvals/request/", json={}).status_code == 404  # assets are real now


def test_a_new_asset_and_an_added_one_are_announced_by_webhook(api: tuple) -> None:
    client, _ = api
    receiver = Receiver()
    with LiveApp(receiver.app) as sink:
        for event_type in ("assets", "collections"):
            hook = {"url": f"{sink.url}/hook", "event_type": event_type, "status": "ENABLED"}
            assert client.post("/notifications/v1/webhooks/", json=hook).status_code == 201
        masters = client.post("/assets/v1/collections/", json={"title": "Brand Masters"}).json()["id"]
        asset = client.post(
            "/assets/v1/assets/?assign_to_collection=true", json={"title": "m.mov", "collection_id": masters}
        ).json()["id"]
        events = receiver.wait_for(3)
    kinds = [(e["event_type"], e["realm"], e["operation"], e["object_id"]) for e in events]
    assert ("assets", "entity", "create", asset) in kinds
    assert ("collections", "contents", "create", masters) in kinds
    added = next(e for e in events if e["realm"] == "contents")
    assert added["data"]["object_id"] == asset and added["data"]["object_type"] == "assets"


def test_assets_and_contents_refuse_a_caller_without_the_app_id_and_token(api: tuple) -> None:
    client, _ = api
    masters = client.post("/assets/v1/collections/", json={"title": "Brand Masters"}).json()["id"]
    asset = client.post("/assets/v1/assets/", json={"title": "m.mov"}).json()["id"]
    anonymous = httpx.Client(base_url=str(client.base_url), timeout=10)
    with anonymous:
        for method, path in [
            ("POST", "/assets/v1/assets/"),
            ("GET", f"/assets/v1/assets/{asset}/"),
            ("DELETE", f"/assets/v1/assets/{asset}/"),
            ("GET", f"/assets/v1/collections/{masters}/contents/"),
            ("POST", f"/assets/v1/collections/{masters}/contents/"),
        ]:
            answer = anonymous.request(method, path, json={} if method == "POST" else None)
            assert answer.status_code == 401, (method, path, answer.text)
    assert client.get(f"/assets/v1/assets/{asset}/").status_code == 200  # nothing was deleted
