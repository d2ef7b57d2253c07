"""/api/v1 over real HTTP: reviewer routing and the delivery context (JSON and signed JWT)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from tests.live import LiveBridge
from tests.sync.conftest import make_world

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

POLICY = {  # no target enabled: the sync runs with nothing to send, the policy still answers
    "access": {
        "reviewers": [
            {"group": "Legal Reviewers", "folders": ["campaigns/*"], "collections": ["Brand Masters"]},
            {"group": "Brand Council"},  # no glob: everywhere
        ],
        "context": {
            "folders": ["campaigns/{division}", "teams/{department}"],
            "metadata": {"region": "{division}", "language": "{preferredLanguage}", "cost_center": "{costCenter}"},
            "jwt_ttl_seconds": 120,
        },
    },
}


def _user(name: str, active: bool = True, **enterprise: str) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": name,
        "displayName": name.split("@")[0].title(),
        "active": active,
        "locale": "de-DE",
        "preferredLanguage": "de",
        "emails": [{"value": name, "primary": True}],
        ENTERPRISE: enterprise,
    }


@pytest.fixture
def bridge(bridge_store_url: str, tmp_path: Path) -> Iterator[LiveBridge]:
    (tmp_path / "policy.yml").write_text(yaml.safe_dump(POLICY))
    with LiveBridge(bridge_store_url, policy=tmp_path / "policy.yml") as live:
        assert live.app.state.sync is not None  # the policy is loaded, though no target is enabled
        yield live


@pytest.fixture
def people(bridge: LiveBridge) -> dict[str, str]:
    """Two legal reviewers (one a leaver), a council member and someone in neither group; name → id."""
    ids: dict[str, str] = {}
    with bridge.client() as scim:
        for name, active, attributes in [
            ("lena@example.com", True, {"division": "EMEA", "department": "Legal", "organization": "Consumer"}),
            ("leo@example.com", False, {"division": "EMEA", "department": "Legal"}),
            ("carla@example.com", True, {"division": "APAC"}),
            ("max@example.com", True, {}),
        ]:
            answer = scim.post("/Users", json=_user(name, active, **attributes))
            assert answer.status_code == 201, answer.text
            ids[name] = answer.json()["id"]
        for group, members in [
            ("Legal Reviewers", ["lena@example.com", "leo@example.com"]),
            ("Brand Council", ["carla@example.com"]),
        ]:
            answer = scim.post(
                "/Groups",
                json={"schemas": [GROUP], "displayName": group, "members": [{"value": ids[m]} for m in members]},
            )
            assert answer.status_code == 201, answer.text
    return ids


def _api(bridge: LiveBridge, token: str | None = "default", **kwargs: Any) -> httpx.Client:
    client = bridge.client(**kwargs) if token == "default" else bridge.client(token, **kwargs)
    client.base_url = httpx.URL(bridge.root + "/api/v1")
    return client


def _who(answer: dict[str, Any]) -> dict[str, list[str]]:
    return {rule["group"]: [m["userName"] for m in rule["members"]] for rule in answer["reviewers"]}


def test_reviewers_of_a_campaign_folder_are_the_active_legal_reviewers(
    bridge: LiveBridge, people: dict[str, str]
) -> None:
    with _api(bridge) as api:
        answer = api.get("/reviewers", params={"target": "cloudinary", "folder": "/campaigns/emea/"}).json()
        other = api.get("/reviewers", params={"target": "cloudinary", "folder": "catalog"}).json()
    assert answer["folder"] == "campaigns/emea"
    assert _who(answer) == {"Legal Reviewers": ["lena@example.com"], "Brand Council": ["carla@example.com"]}  # leo left
    legal = answer["reviewers"][0]
    assert legal["rule"] == "access.reviewers[0]"
    assert legal["directoryGroup"]["displayName"] == "Legal Reviewers"
    assert legal["targetGroup"] == {"name": "Legal Reviewers", "id": None}  # mirrored, not synced (no target)
    assert legal["members"] == [
        {
            "id": people["lena@example.com"],
            "userName": "lena@example.com",
            "displayName": "Lena",
            "email": "lena@example.com",
            "targetId": None,
        }
    ]
    assert _who(other) == {"Brand Council": ["carla@example.com"]}  # Legal is not routed to catalog


def test_reviewers_for_an_iconik_collection(bridge: LiveBridge, people: dict[str, str]) -> None:
    with _api(bridge) as api:
        masters = api.get("/reviewers", params={"target": "iconik", "collection": "brand masters"}).json()
        other = api.get("/reviewers", params={"target": "iconik", "collection": "Post Production"}).json()
    assert _who(masters) == {"Legal Reviewers": ["lena@example.com"], "Brand Council": ["carla@example.com"]}
    assert masters["approvalRequest"] == {"users": [], "groups": []}  # no iconik ids yet: nothing synced
    assert _who(other) == {"Brand Council": ["carla@example.com"]}


def test_reviewers_refuses_bad_questions(bridge: LiveBridge) -> None:
    with _api(bridge) as api:
        for params in [
            {},
            {"target": "dropbox", "folder": "x"},
            {"target": "cloudinary"},
            {"target": "iconik", "folder": "campaigns/emea"},
            {"target": "cloudinary", "folder": "/"},
        ]:
            answer = api.get("/reviewers", params=params)
            assert answer.status_code == 400, params
            assert answer.json()["error"]


def test_the_api_needs_the_scim_credentials_but_the_jwks_does_not(bridge: LiveBridge) -> None:
    with _api(bridge, token=None) as anonymous, _api(bridge, token="wrong-token") as wrong:
        for client in (anonymous, wrong):
            assert client.get("/reviewers", params={"target": "cloudinary", "folder": "a"}).status_code == 401
            assert client.get("/context/lena@example.com").status_code == 401
        jwks = anonymous.get("/context/jwks.json")
    assert jwks.status_code == 200
    [key] = jwks.json()["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and "d" not in key


def test_context_by_user_name_and_by_id(bridge: LiveBridge, people: dict[str, str]) -> None:
    lena = people["lena@example.com"]
    with _api(bridge) as api:
        by_name = api.get("/context/LENA@example.com")
        by_id = api.get(f"/context/{lena}")
        unknown = api.get("/context/nobody@example.com")
        sparse = api.get("/context/max@example.com").json()
    assert by_name.status_code == 200 and by_name.json() == by_id.json()
    assert by_name.json() == {
        "user": {"id": lena, "userName": "lena@example.com"},
        "region": "EMEA",
        "locale": "de-DE",
        "language": "de",
        "businessUnit": "Consumer",
        "folders": [],  # no target enabled: nothing is granted, so no folder is claimed (templates only narrow)
        "metadata": {"region": "EMEA", "language": "de"},  # no costCenter: that selector is left out
        "active": True,
    }
    assert unknown.status_code == 404
    assert sparse["region"] is None and sparse["businessUnit"] is None and sparse["folders"] == []


def test_context_as_a_jwt_verifies_with_the_published_key(bridge: LiveBridge, people: dict[str, str]) -> None:
    with _api(bridge) as api:
        answer = api.get("/context/lena@example.com", params={"format": "jwt"})
        by_accept = api.get(f"/context/{people['lena@example.com']}", headers={"Accept": "application/jwt"})
        jwks = api.get("/context/jwks.json").json()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/jwt")
    assert by_accept.status_code == 200 and by_accept.text.count(".") == 2
    keys = KeySet.import_key_set(jwks)
    token = jwt.decode(answer.text, keys, algorithms=["ES256"])
    claims = token.claims
    assert token.header["alg"] == "ES256" and token.header["kid"] == jwks["keys"][0]["kid"]
    assert claims["iss"] == bridge.root and claims["sub"] == people["lena@example.com"]
    assert claims["exp"] - claims["iat"] == 120
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": bridge.root}).validate(claims)  # exp not passed
    assert claims["region"] == "EMEA" and claims["businessUnit"] == "Consumer" and claims["language"] == "de"
    assert claims["folders"] == [] and claims["metadata"]["region"] == "EMEA"
    assert claims["user"]["userName"] == "lena@example.com" and claims["active"] is True
    header, _, signature = answer.text.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "region": "AMER"}).encode()).decode().rstrip("=")
    tampered = f"{header}.{forged}.{signature}"  # another region under Lena's signature
    with pytest.raises(BadSignatureError):
        jwt.decode(tampered, keys, algorithms=["ES256"])


def test_a_leaver_gets_a_context_but_no_token(bridge: LiveBridge, people: dict[str, str]) -> None:
    with _api(bridge) as api:
        plain = api.get("/context/leo@example.com")
        token = api.get("/context/leo@example.com", params={"format": "jwt"})
    assert plain.status_code == 200 and plain.json()["active"] is False
    assert token.status_code == 403 and "not active" in token.json()["error"]


def test_without_a_policy_the_api_says_so(tmp_path: Path) -> None:
    with LiveBridge(f"sqlite:///{tmp_path}/bridge.db") as live, _api(live) as api:
        reviewers = api.get("/reviewers", params={"target": "cloudinary", "folder": "a"})
        context = api.get("/context/anyone")
    assert reviewers.status_code == 404 and "policy" in reviewers.json()["error"]
    assert context.status_code == 404 and "policy" in context.json()["error"]


def test_reviewers_carry_the_target_ids_once_synced(tmp_path: Path) -> None:
    """With both emulators: the iconik answer names the synced group and accounts, ready for an
    approval request."""
    world_iter = make_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db", access=POLICY["access"])
    world = next(world_iter)
    try:
        lena = world.scim.post("/Users", json=_user("lena@example.com", division="EMEA")).json()["id"]
        group = world.scim.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Legal Reviewers", "members": [{"value": lena}]}
        )
        assert group.status_code == 201
        world.converge(
            lambda w: (
                "Legal Reviewers" in w.ico_groups_of("lena@example.com")
                and "Legal Reviewers" in w.cld_groups_of("lena@example.com")
            )
        )
        with _api(world.bridge) as api:
            ico = api.get("/reviewers", params={"target": "iconik", "collection": "Brand Masters"}).json()
            cld = api.get("/reviewers", params={"target": "cloudinary", "folder": "campaigns/amer"}).json()
        ico_user, cld_user = world.ico_user("lena@example.com"), world.cld_user("lena@example.com")
        assert ico_user is not None and cld_user is not None
        ico_group = next(g for g, v in world.iconik.groups.items() if v["name"] == "Legal Reviewers")
        assert ico["approvalRequest"] == {"users": [ico_user["id"]], "groups": [ico_group]}
        assert ico["reviewers"][0]["members"][0]["targetId"] == ico_user["id"]
        assert cld["reviewers"][0]["members"][0]["targetId"] == cld_user["id"]
        assert cld["reviewers"][0]["targetGroup"]["id"]
    finally:
        world_iter.close()
