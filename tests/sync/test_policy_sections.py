"""The policy's target sections are validated by each target's own models (targets/<name>_policy.py,
named by its registry entry), and a bad policy's message keeps the path a user would look for:
`targets.iconik.rate`, `roles.0.iconik`, `access.cloudinary.folders.0.path`, the same as when the
models lived in sync/, and for a third target's sections too (`targets.acme.rate`, not `targets.rate`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from scim_bridge.sync.access import TargetSection
from scim_bridge.sync.desired import grant_kinds
from scim_bridge.sync.guardrails import ExternalProfile, group_problems
from scim_bridge.sync.policy import PolicyError, load_policy
from scim_bridge.targets.registry import TARGETS
from tests.targets.test_third_target import ACME

REFUSED = {
    "targets:\n  cloudinary:\n    default_role: boss\n": "line 3: targets.cloudinary.default_role: Input should be "
    "'master_admin', 'admin', 'billing', 'technical_admin', 'reports', 'media_library_admin' or 'media_library_user'",
    "targets:\n  iconik:\n    enabled: true\n    colour: blue\n": (
        "line 4: targets.iconik.colour: Extra inputs are not permitted"
    ),
    "targets:\n  iconik:\n    rate: 0\n": "line 3: targets.iconik.rate: Input should be greater than 0",
    "targets:\n  bogus: {}\n": "line 2: targets: Value error, unknown target 'bogus' (known: cloudinary, iconik)",
    "roles:\n  - when: {group: Editors}\n    iconik: BOSS\n": "line 3: roles.0.iconik: Input should be 'POWER', "
    "'STANDARD', 'BROWSE_ONLY' or 'BROWSE_API_ONLY'",
    "roles:\n  - when: {group: Editors}\n    bogus: x\n": "line 2: roles.0: Value error, unknown target 'bogus' in a "
    "roles rule (known: cloudinary, iconik)",
    "access:\n  cloudinary:\n    folders:\n      - path: /\n": "line 4: access.cloudinary.folders.0.path: Value error, "
    "a folder path cannot be empty",
    "access:\n  cloudinary:\n    folders:\n      - path: a\n        grants: [{group: g, role: viewer, colour: x}]\n": (
        "line 5: access.cloudinary.folders.0.grants.0.colour: Extra inputs are not permitted"
    ),
    "access:\n  iconik:\n    collections:\n      - title: A\n        grants:\n"
    "          - {group: g, permissions: [read, fly]}\n": (
        "line 6: access.iconik.collections.0.grants.0.permissions.1: Input should be 'read', 'write', 'delete' or "
        "'change-acl'"
    ),
    "access:\n  iconik:\n    collections:\n      - {title: A, parent: B}\n": "line 3: access.iconik: Value error, "
    "collection 'A': parent 'B' must be listed before it",
    "access:\n  bogus: {}\n": "line 2: access: Value error, unknown section 'bogus' (known: cloudinary, context, "
    "external, iconik, reviewers)",
    "access:\n  cloudinary:\n    permission_model: magic\n": "line 3: access.cloudinary.permission_model: Input "
    "should be 'auto', 'roles' or 'invite'",
    "access:\n  external:\n    cloudinary_roles: [boss]\n": "line 1: policy: Value error, access.external: unknown "
    "cloudinary role 'boss' (known: master_admin, admin, billing, technical_admin, reports, media_library_admin, "
    "media_library_user)",
    "access:\n  external:\n    iconik_user_types: [read]\n    colour: blue\n": "line 4: access.external.colour: "
    "Extra inputs are not permitted",
}


def refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yml"
    path.write_text(text)
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    return str(refused.value).removeprefix(f"{path}: ")


@pytest.mark.parametrize("text", list(REFUSED))
def test_a_bad_target_section_is_refused_with_its_path_and_line(tmp_path: Path, text: str) -> None:
    assert refusal(tmp_path, text) == REFUSED[text]


@pytest.fixture
def acme_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(TARGETS, "acme", ACME)
    yield


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("targets:\n  acme:\n    rate: -1\n", "line 3: targets.acme.rate: Input should be greater than 0"),
        ("access:\n  acme:\n    folders: []\n", "line 3: access.acme.folders: Extra inputs are not permitted"),
        (
            "roles:\n  - when: {group: Editors}\n    acme: boss\n",
            "line 3: roles.0.acme: Input should be 'viewer', 'editor' or 'owner'",
        ),
    ],
)
def test_a_third_targets_bad_section_is_refused_with_its_own_path(
    acme_registered: None, tmp_path: Path, text: str, message: str
) -> None:
    assert refusal(tmp_path, text) == message


def test_every_registered_target_has_its_section_after_load_with_its_models_defaults(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("targets:\n  iconik: {enabled: true}\n")
    policy = load_policy(path)
    assert list(dict(policy.targets)) == list(TARGETS)
    assert [policy.targets.section(name).enabled for name in TARGETS] == [name == "iconik" for name in TARGETS]
    assert policy.default_role("cloudinary") == "media_library_user" and policy.default_role("iconik") == "BROWSE_ONLY"
    assert list(policy.access.sections()) == list(TARGETS)
    assert all(type(policy.access.section(name)).__module__ == f"scim_bridge.targets.{name}_policy" for name in TARGETS)
    # a target's own list of external roles, from before `access.external.roles`, keeps its default
    assert policy.external_roles("cloudinary") == (["media_library_user"], "access.external.cloudinary_roles")


class GuardedAccess(TargetSection):
    """A third target's `access.acme` with one rule kind: `shares`, each a group and a share name."""

    shares: list[dict[str, str]] = []

    def guardrail_problems(self, profile: ExternalProfile) -> list[tuple[tuple[str | int, ...], str]]:
        return [
            (("shares", i), f"access.acme.shares[{i}]: external group {s['group']!r} would reach share {s['name']}")
            for i, s in enumerate(self.shares)
            if profile.external_group(s["group"])
        ]

    def group_problems(self, profile: ExternalProfile, name: str) -> list[tuple[str, str | None]]:
        return [
            (f"access.acme.shares[{i}]", f"share {s['name']}") for i, s in enumerate(self.shares) if s["group"] == name
        ]


def test_a_third_targets_section_holds_its_own_rules_to_the_guardrails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(TARGETS, "acme", dataclasses.replace(ACME, access_model=f"{__name__}:GuardedAccess"))
    text = (
        "guardrails:\n  external: [{group: 'Agency *'}]\n"
        "access:\n  acme:\n    shares:\n      - {group: Staff, name: all}\n      - {group: Agency X, name: raw}\n"
    )
    assert refusal(tmp_path, text) == (
        "line 7: guardrail: access.acme.shares[1]: external group 'Agency X' would reach share raw"
    )
    path = tmp_path / "ok.yml"
    path.write_text(text.replace("Agency X", "Editors"))
    assert group_problems(load_policy(path), "Editors") == ["share raw"]  # what an external member is kept from


def test_grant_kinds_are_the_common_ones_then_each_targets_own_in_registry_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert grant_kinds() == (
        "folder", "collection", "cloudinary-collection", "moderation", "agency-key", "group-role"
    )  # fmt: skip
    monkeypatch.setattr(GuardedAccess, "GRANT_KINDS", ("share",), raising=False)
    monkeypatch.setitem(TARGETS, "acme", dataclasses.replace(ACME, access_model=f"{__name__}:GuardedAccess"))
    assert grant_kinds()[-1] == "share"  # a third target's kind, with no edit in sync/
