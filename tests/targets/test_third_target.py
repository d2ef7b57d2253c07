"""A third target plugs in with its own files and one registry entry, and nothing in sync/, audit/
or web/ changes: "Acme DAM" (tests/targets/acme/: a translator of the core only, its policy
sections, a small emulator over real HTTP) is registered here, then a directory user written
through SCIM is provisioned into it with the role its roles rule gives, in the group it belongs
to, and `plan` and `explain` name the target by its own name, with its own roles."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scim_bridge.store import open_store
from scim_bridge.sync.explain import explain
from scim_bridge.sync.plan import plan
from scim_bridge.sync.policy import Policy, PolicyError, load_policy
from scim_bridge.targets.registry import TARGETS, TargetEntry
from tests.emulators.live import LiveApp
from tests.live import LiveBridge
from tests.targets.acme.emulator import TOKEN, AcmeState
from tests.targets.acme.emulator import build as acme_emulator

ACME = TargetEntry(
    "acme",
    factory="tests.targets.acme.translator:build",
    policy_model="tests.targets.acme.policy:AcmePolicy",
    access_model="tests.targets.acme.policy:AcmeAccess",
    emulator="tests.targets.acme.emulator:build",
)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def acme_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(TARGETS, "acme", ACME)  # the one registry entry
    yield


def write_policy(tmp_path: Path, base_url: str) -> Path:
    (tmp_path / "acme.json").write_text(json.dumps({"token": TOKEN}))
    policy = {
        "targets": {"acme": {"enabled": True, "base_url": base_url, "credentials_file": str(tmp_path / "acme.json")}},
        "roles": [{"when": {"group": "Editors"}, "acme": "editor"}],
        "guardrails": {"external": [{"attribute": {"userType": "External*"}}]},
    }
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(policy))
    return path


def converge(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the bridge did not converge"
        time.sleep(0.05)


def test_a_registered_third_target_is_planned_provisioned_and_explained(
    acme_registered: None, bridge_store_url: str, tmp_path: Path
) -> None:
    state = AcmeState()
    with LiveApp(acme_emulator(state)) as acme:
        policy_path = write_policy(tmp_path, acme.url)
        policy = load_policy(policy_path)
        assert policy.enabled_targets() == ["acme"]
        with LiveBridge(bridge_store_url) as bridge, bridge.client() as scim:  # no policy: the directory only
            ids = [
                scim.post("/Users", json={"schemas": [USER], "emails": [{"value": email, "primary": True}], **fields})
                for email, fields in (
                    ("ann@example.com", {"userName": "ann@example.com", "displayName": "Ann Acme"}),
                    ("fred@agency.example", {"userName": "fred@agency.example", "userType": "External"}),
                )
            ]
            assert [r.status_code for r in ids] == [201, 201], [r.text for r in ids]
            members = [{"value": r.json()["id"]} for r in ids]
            group = scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Editors", "members": members})
            assert group.status_code == 201, group.text
        before, _, _ = asyncio.run(read_back(bridge_store_url, policy))
        assert {line.split()[0] for line in before} == {"acme"}, before  # labelled by its own name, nothing else
        assert any("create-user" in line and "ann@example.com" in line for line in before), before
        assert any("create-group" in line and "Editors" in line for line in before), before

        with LiveBridge(bridge_store_url, policy=policy_path):  # its workers take the queued writes

            def synced() -> bool:
                a, f = state.user_by_email("ann@example.com"), state.user_by_email("fred@agency.example")
                return bool(a and f and a["role"] == "editor" and state.groups_of("fred@agency.example") == {"Editors"})

            converge(synced)
        assert state.groups_of("ann@example.com") == {"Editors"}
        # the external member is held to the guardrail: Acme's own external roles, not the rule's editor
        assert state.user_by_email("fred@agency.example")["role"] == "viewer"  # type: ignore[index]
        after, ann_lines, fred_lines = asyncio.run(read_back(bridge_store_url, policy))
    assert after == [], after  # everything applied: the plan of a synced directory is empty
    assert "  acme:" in ann_lines and not any("iconik" in line or "cloudinary" in line for line in ann_lines)
    assert any("role editor" in line and "roles[0]" in line for line in ann_lines), ann_lines
    assert any("role viewer" in line and "targets.acme" in line for line in fred_lines), fred_lines


async def read_back(store_url: str, policy: Policy) -> tuple[list[str], list[str], list[str]]:
    """`plan`, and `explain` of both people, as the CLI computes them (in this process, where the
    test's registry entry is)."""
    store = open_store(store_url)
    await store.open()
    try:
        changes = [str(c) for c in await plan(store, policy)]
        lines = []
        for who in ("ann@example.com", "fred@agency.example"):
            explained = await explain(store, policy, who)
            assert explained is not None, who
            lines.append(explained.lines())
        return changes, lines[0], lines[1]
    finally:
        await store.close()


def test_a_section_for_an_unregistered_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yml").write_text(yaml.safe_dump({"targets": {"acme": {"enabled": True}}}))
    with pytest.raises(PolicyError, match="acme"):
        load_policy(tmp_path / "p.yml")
