"""Before/after differences as the audit trail records them."""

from __future__ import annotations

from scim_bridge.audit.diff import changes

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_paths_old_and_new_values_without_bookkeeping() -> None:
    before = {
        "id": "1",
        "meta": {"version": 'W/"1"'},
        "userName": "ada",
        "name": {"givenName": "Ada"},
        ENTERPRISE: {"department": "Legal", "manager": {"value": "m1"}},
    }
    after = {
        "id": "1",
        "meta": {"version": 'W/"2"'},
        "userName": "ada",
        "name": {"givenName": "Augusta"},
        "title": "Countess",
        ENTERPRISE: {"department": "Brand", "manager": {"value": "m2"}},
    }
    assert changes(before, after) == [
        {"path": "name.givenName", "old": "Ada", "new": "Augusta"},
        {"path": "title", "old": None, "new": "Countess"},
        {"path": f"{ENTERPRISE}:department", "old": "Legal", "new": "Brand"},
        {"path": f"{ENTERPRISE}:manager.value", "old": "m1", "new": "m2"},
    ]


def test_multi_valued_attributes_by_value() -> None:
    members = [{"value": str(n), "type": "User"} for n in range(1000)]
    after = members[1:] + [{"value": "new", "type": "User"}]
    assert changes({"members": members}, {"members": after}) == [
        {"path": "members", "added": ["new"], "removed": ["0"]}
    ]
    assert changes({"members": members}, {}) == [
        {"path": "members", "added": [], "removed": [m["value"] for m in members]}
    ]
    primary = [{"value": "a@x", "primary": True}]
    assert changes({"emails": [{"value": "a@x"}]}, {"emails": primary}) == [
        {"path": "emails", "old": [{"value": "a@x"}], "new": primary}
    ]


def test_secrets_are_noted_never_kept() -> None:
    recorded = changes({"password": "old-secret"}, {"password": "new-secret", "x": {"apiToken": "t0k3n", "a": 1}})
    assert recorded == [
        {"path": "password", "redacted": True},
        {"path": "x.a", "old": None, "new": 1},
        {"path": "x.apiToken", "redacted": True},
    ]
    assert "secret" not in str(recorded) and "t0k3n" not in str(recorded)
