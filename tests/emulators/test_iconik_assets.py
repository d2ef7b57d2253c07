"""The iconik emulator's collections, projects, approvals and webhooks over real HTTP, against iconik's
own schemas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from scim_bridge.emulators import iconik
from tests.emulators.live import LiveApp
from tests.emulators.live import serve_iconik as serve
from tests.emulators.spec import assert_matches

ASSETS, NOTIFICATIONS = "iconik/assets.json", "iconik/notifications.json"


@pytest.fixture
def api() -> Iterator[tuple[httpx.Client, iconik.IconikState]]:
    yield from serve()


def user(client: httpx.Client, name: str, groups: list[str] | None = None) -> str:
    return str(
        client.post(
            "/users/v1/users/",
            json={"email": f"{name}@example.com", "first_name": name, "type": "STANDARD", "groups": groups or []},
        ).json()["id"]
    )


def test_collection_lifecycle_with_parents(api: tuple) -> None:
    client, state = api
    created = client.post("/assets/v1/collections/", json={"title": "Marketing", "external_id": "otds-ou-1"})
    assert created.status_code == 201
    assert_matches(ASSETS, "/v1/collections/", "post", 201, created.json())
    root = created.json()
    assert root["is_root"] is True and root["created_by_user"] == state.token_user_id
    child = client.post("/assets/v1/collections/", json={"title": "EMEA", "parent_id": root["id"]}).json()
    grandchild = client.post("/assets/v1/collections/", json={"title": "Spring", "parent_id": child["id"]}).json()
    assert grandchild["parents"] == [root["id"], child["id"]] and grandchild["in_collections"] == [child["id"]]
    read = client.get(f"/assets/v1/collections/{grandchild['id']}/")
    assert read.status_code == 200
    assert_matches(ASSETS, "/v1/collections/{collection_id}/", "get", 200, read.json())
    renamed = client.patch(f"/assets/v1/collections/{child['id']}/", json={"title": "Europe"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Europe"
    assert_matches(ASSETS, "/v1/collections/{collection_id}/", "patch", 200, renamed.json())
    # Moving the grandchild to the root: its ancestry follows.
    moved = client.put(f"/assets/v1/collections/{grandchild['id']}/", json={"title": "Spring", "parent_id": root["id"]})
    assert moved.json()["parents"] == [root["id"]]
    assert_matches(ASSETS, "/v1/collections/{collection_id}/", "put", 200, moved.json())
    assert client.patch(f"/assets/v1/collections/{root['id']}/", json={"parent_id": child["id"]}).status_code == 400
    assert client.put(f"/assets/v1/collections/{root['id']}/", json={}).status_code == 400
    listed = client.get("/assets/v1/collections/", params={"per_page": 2})
    assert listed.json()["total"] == 3 and listed.json()["next_url"].startswith("/API/assets/v1/collections/?")
    assert_matches(ASSETS, "/v1/collections/", "get", 200, listed.json())
    roots = client.get("/assets/v1/collections/", params={"is_root": "true"}).json()
    assert [c["title"] for c in roots["objects"]] == ["Marketing"]
    scrolled = client.get("/assets/v1/collections/", params={"scroll": "true", "per_page": 2}).json()
    rest = client.get("/assets/v1/collections/", params={"scroll_id": scrolled["scroll_id"]}).json()
    assert len(scrolled["objects"]) == 2 and len(rest["objects"]) == 1
    assert_matches(ASSETS, "/v1/collections/", "get", 200, scrolled)
    # Delete is scheduled (202); the collection and what is inside it leave the listing.
    assert client.delete(f"/assets/v1/collections/{child['id']}/").status_code == 202
    assert client.get(f"/assets/v1/collections/{child['id']}/").json()["status"] == "DELETED"
    assert client.get("/assets/v1/collections/").json()["total"] == 2
    assert client.post("/assets/v1/collections/", json={"title": "x", "parent_id": child["id"]}).status_code == 400
    assert client.post("/assets/v1/collections/", json={}).status_code == 400
    missing = client.get("/assets/v1/collections/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404 and missing.json() == {"errors": ["Collection does not exist"]}


def test_collection_delete_can_purge() -> None:
    for client, state in serve(iconik.IconikSwitches(collection_delete_purges=True)):
        collection = client.post("/assets/v1/collections/", json={"title": "Gone"}).json()["id"]
        assert client.delete(f"/assets/v1/collections/{collection}/").status_code == 202
        assert client.get(f"/assets/v1/collections/{collection}/").status_code == 404
        assert state.collections == {}


def test_project_with_members_added_and_removed(api: tuple) -> None:
    client, state = api
    parent = client.post("/assets/v1/collections/", json={"title": "Campaigns"}).json()["id"]
    created = client.post("/assets/v1/projects/", json={"name": "Spring launch", "collection_parent_id": parent})
    assert created.status_code == 201
    assert_matches(ASSETS, "/v1/projects/", "post", 201, created.json())
    project = created.json()
    collection = client.get(f"/assets/v1/collections/{project['collection_id']}/").json()
    assert collection["title"] == "Spring launch" and collection["project_id"] == project["id"]
    assert collection["parent_id"] == parent
    ana, ben = user(client, "ana"), user(client, "ben")
    added = client.post(f"/assets/v1/projects/{project['id']}/members/", json={"id": ana})
    assert added.status_code == 201 and added.json()["id"] == ana
    assert_matches(ASSETS, "/v1/projects/{project_id}/members/", "post", 201, added.json())
    client.post(f"/assets/v1/projects/{project['id']}/members/", json={"id": ben})
    members = client.get(f"/assets/v1/projects/{project['id']}/members/")
    assert sorted(m["id"] for m in members.json()["objects"]) == sorted([ana, ben])
    assert_matches(ASSETS, "/v1/projects/{project_id}/members/", "get", 200, members.json())
    one = client.get(f"/assets/v1/projects/{project['id']}/members/{ben}/")
    assert_matches(ASSETS, "/v1/projects/{project_id}/members/{member_id}/", "get", 200, one.json())
    assert client.delete(f"/assets/v1/projects/{project['id']}/members/{ben}/").status_code == 204
    assert client.get(f"/assets/v1/projects/{project['id']}/members/{ben}/").status_code == 404
    assert [m["id"] for m in client.get(f"/assets/v1/projects/{project['id']}/members/").json()["objects"]] == [ana]
    assert client.post(f"/assets/v1/projects/{project['id']}/members/", json={"id": "nobody"}).status_code == 400
    assert state.project_members[project["id"]].keys() == {ana}
    renamed = client.patch(f"/assets/v1/projects/{project['id']}/", json={"name": "Spring launch 2026"})
    assert renamed.status_code == 200
    assert_matches(ASSETS, "/v1/projects/{project_id}/", "patch", 200, renamed.json())
    assert client.patch(f"/assets/v1/projects/{project['id']}/", json={"status": "ARCHIVED"}).status_code == 400
    read = client.get(f"/assets/v1/projects/{project['id']}/")
    assert_matches(ASSETS, "/v1/projects/{project_id}/", "get", 200, read.json())
    listed = client.get("/assets/v1/projects/")
    assert listed.json()["total"] == 1
    assert_matches(ASSETS, "/v1/projects/", "get", 200, listed.json())
    # An existing collection can become a project's, once.
    own = client.post("/assets/v1/collections/", json={"title": "Agency"}).json()["id"]
    second = client.post("/assets/v1/projects/", json={"name": "Agency", "collection_id": own})
    assert second.status_code == 201 and second.json()["collection_id"] == own
    assert client.post("/assets/v1/projects/", json={"name": "Again", "collection_id": own}).status_code == 400
    replaced = client.put(
        f"/assets/v1/projects/{second.json()['id']}/", json={"name": "Agency X", "collection_id": own}
    )
    assert_matches(ASSETS, "/v1/projects/{project_id}/", "put", 200, replaced.json())
    assert client.delete(f"/assets/v1/projects/{project['id']}/").status_code == 202
    assert client.get(f"/assets/v1/projects/{project['id']}/").json() == {"errors": ["Project does not exist"]}
    assert "project_id" not in client.get(f"/assets/v1/collections/{project['collection_id']}/").json()


def test_project_membership_can_grant_the_project_collection() -> None:
    for client, _ in serve(iconik.IconikSwitches(project_members_get_collection_acl=True)):
        project = client.post("/assets/v1/projects/", json={"name": "P"}).json()
        ana = user(client, "ana")
        check = f"/acls/v1/users/{ana}/acl/collections/{project['collection_id']}/write/"
        assert client.get(check).status_code == 403
        client.post(f"/assets/v1/projects/{project['id']}/members/", json={"id": ana})
        assert client.get(check).status_code == 200


def test_approval_request_votes_and_result(api: tuple) -> None:
    client, state = api
    legal = client.post("/users/v1/groups/", json={"name": "Legal"}).json()["id"]
    lea, leo, max_ = user(client, "lea", [legal]), user(client, "leo", [legal]), user(client, "max")
    collection = client.post("/assets/v1/collections/", json={"title": "Cut 3"}).json()["id"]
    base = f"/assets/v1/collections/{collection}/approvals/"
    assert client.put(base, json={"status": "APPROVED", "user": lea}).status_code == 404  # no request yet
    requested = client.post(base + "request/", json={"groups": [legal], "users": [max_], "min_number": 2})
    assert requested.status_code == 201 and requested.json()["status"] == "REQUESTED"
    assert_matches(ASSETS, "/v1/{object_type}/{object_id}/approvals/request/", "post", 201, requested.json())
    vote = client.put(base, json={"status": "APPROVED", "user": lea})
    assert vote.status_code == 200 and vote.json()["user"] == lea
    assert_matches(ASSETS, "/v1/{object_type}/{object_id}/approvals/", "put", 200, vote.json())
    assert client.get(base + "request/").json()["status"] == "REQUESTED"  # one of two approvals
    client.put(base, json={"status": "APPROVED", "user": leo})
    approved = client.get(base + "request/")
    assert approved.json()["status"] == "APPROVED"
    assert_matches(ASSETS, "/v1/{object_type}/{object_id}/approvals/request/", "get", 200, approved.json())
    client.put(base, json={"status": "NOT_APPROVED", "user": max_})
    assert client.get(base + "request/").json()["status"] == "MIXED"
    votes = client.get(base)
    assert {v["user"]: v["status"] for v in votes.json()["objects"]} == {
        lea: "APPROVED",
        leo: "APPROVED",
        max_: "NOT_APPROVED",
    }
    assert_matches(ASSETS, "/v1/{object_type}/{object_id}/approvals/", "get", 200, votes.json())
    assert client.delete(base + f"user/{max_}/").status_code == 204
    assert client.get(base + "request/").json()["status"] == "APPROVED"
    # Someone outside the request cannot vote; a group member removed later cannot either.
    outsider = user(client, "out")
    assert client.put(base, json={"status": "APPROVED", "user": outsider}).status_code == 400
    client.delete(f"/users/v1/groups/{legal}/users/{leo}/")
    assert client.put(base, json={"status": "NOT_APPROVED", "user": leo}).status_code == 400
    assert client.put(base, json={"status": "MAYBE", "user": lea}).status_code == 400
    edited = client.patch(base + "request/", json={"min_number": 1})
    assert edited.status_code == 200
    assert_matches(ASSETS, "/v1/{object_type}/{object_id}/approvals/request/", "patch", 200, edited.json())
    withdrawn = client.delete(base + "request/")
    assert withdrawn.status_code == 200
    assert_matches(ASSETS, "/v1/{object_type}/{object_id}/approvals/request/", "delete", 200, withdrawn.json())
    assert client.get(base + "request/").status_code == 404
    assert state.approvals == {}
    assert client.post("/assets/v1/collections/nope/approvals/request/", json={}).status_code == 404


def test_only_rejections_mean_not_approved_and_async_requests() -> None:
    for client, _ in serve(iconik.IconikSwitches(approval_request_async=True)):
        reviewer = user(client, "rita")
        collection = client.post("/assets/v1/collections/", json={"title": "Cut"}).json()["id"]
        base = f"/assets/v1/collections/{collection}/approvals/"
        job = client.post(base + "request/", json={"users": [reviewer]})
        assert job.status_code == 202
        assert_matches(ASSETS, "/v1/{object_type}/{object_id}/approvals/request/", "post", 202, job.json())
        client.put(base, json={"status": "NOT_APPROVED", "user": reviewer})
        assert client.get(base + "request/").json()["status"] == "NOT_APPROVED"


class Receiver:
    """A local webhook endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []

        async def hook(request: Request) -> JSONResponse:
            self.received.append((dict(request.headers), await request.json()))
            return JSONResponse({})

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 5
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [body for _, body in self.received]


def test_webhook_crud_and_delivery_when_a_collection_is_created(api: tuple) -> None:
    client, state = api
    receiver = Receiver()
    with LiveApp(receiver.app) as sink:
        created = client.post(
            "/notifications/v1/webhooks/",
            json={
                "name": "audit",
                "url": f"{sink.url}/hook",
                "event_type": "collections",
                "realm": "entity",
                "status": "ENABLED",
                "headers": {"X-Bridge-Secret": "s3cret"},
            },
        )
        assert created.status_code == 201
        assert_matches(NOTIFICATIONS, "/v1/webhooks/", "post", 201, created.json())
        hook = created.json()
        acl_hook = client.post(
            "/notifications/v1/webhooks/",
            json={"url": f"{sink.url}/hook", "event_type": "collections", "realm": "acls", "status": "ENABLED"},
        ).json()
        client.post(
            "/notifications/v1/webhooks/", json={"url": f"{sink.url}/hook", "event_type": "assets", "status": "ENABLED"}
        )  # never matches here
        collection = client.post("/assets/v1/collections/", json={"title": "Watched"}).json()
        [event] = receiver.wait_for(1)
        assert (event["event_type"], event["realm"], event["operation"]) == ("collections", "entity", "create")
        assert event["object_id"] == collection["id"] and event["data"]["title"] == "Watched"
        assert receiver.received[0][0]["x-bridge-secret"] == "s3cret"
        group = client.post("/users/v1/groups/", json={"name": "G"}).json()["id"]
        client.put(f"/acls/v1/groups/{group}/acl/collections/{collection['id']}/", json={"permissions": ["read"]})
        acl_event = receiver.wait_for(2)[1]
        assert (acl_event["realm"], acl_event["operation"]) == ("acls", "update")
        assert acl_event["data"] == {
            "object_type": "collections",
            "object_key": collection["id"],
            "group_id": group,
            "permissions": ["read"],
        }
        client.delete(f"/assets/v1/collections/{collection['id']}/")
        assert receiver.wait_for(3)[2]["operation"] == "delete"
        time.sleep(0.1)
        assert len(receiver.received) == 3
        assert state.webhooks[hook["id"]]["last_payload"]
        assert state.webhooks[acl_hook["id"]].get("last_error") is None

    listed = client.get("/notifications/v1/webhooks/")
    assert len(listed.json()["objects"]) == 3
    assert_matches(NOTIFICATIONS, "/v1/webhooks/", "get", 200, listed.json())
    read = client.get(f"/notifications/v1/webhooks/{hook['id']}/")
    assert read.status_code == 201  # as the spec documents it
    assert_matches(NOTIFICATIONS, "/v1/webhooks/{webhook_id}/", "get", 201, read.json())
    updated = client.put(f"/notifications/v1/webhooks/{hook['id']}/", json={**hook, "status": "DISABLED"})
    assert updated.status_code == 200 and updated.json()["status"] == "DISABLED"
    assert_matches(NOTIFICATIONS, "/v1/webhooks/{webhook_id}/", "put", 200, updated.json())
    assert client.post("/notifications/v1/webhooks/", json={"url": "http://x"}).status_code == 400
    assert client.delete(f"/notifications/v1/webhooks/{hook['id']}/").status_code == 204
    assert client.get(f"/notifications/v1/webhooks/{hook['id']}/").status_code == 404


def test_failing_webhooks_are_marked_and_never_fail_the_call() -> None:
    from tests.live import free_port

    for client, state in serve(iconik.IconikSwitches(webhook_failures_before_failing=2, webhook_timeout_seconds=1)):
        dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        hook = client.post(
            "/notifications/v1/webhooks/", json={"url": dead, "event_type": "collections", "status": "ENABLED"}
        ).json()
        for title in ("a", "b"):
            assert client.post("/assets/v1/collections/", json={"title": title}).status_code == 201
        deadline = time.monotonic() + 5
        while state.webhooks[hook["id"]]["status"] != "FAILING" and time.monotonic() < deadline:
            time.sleep(0.02)
        held = state.webhooks[hook["id"]]
        assert held["status"] == "FAILING" and held["last_error"] and held["first_failed_at"]


def test_webhooks_can_be_switched_off() -> None:
    for client, _ in serve(iconik.IconikSwitches(webhooks_deliver=False)):
        receiver = Receiver()
        with LiveApp(receiver.app) as sink:
            client.post(
                "/notifications/v1/webhooks/",
                json={"url": f"{sink.url}/hook", "event_type": "collections", "status": "ENABLED"},
            )
            client.post("/assets/v1/collections/", json={"title": "quiet"})
            time.sleep(0.2)
            assert receiver.received == []
