"""The compatibility switches, each in its non-default position."""

from __future__ import annotations

from pathlib import Path

from tests.live import LiveBridge
from tests.scim.conftest import GROUP, new_group, new_user, patch_ops


def test_delete_mode_deactivate_keeps_the_user_visible(tmp_path: Path) -> None:
    with LiveBridge(f"sqlite:///{tmp_path}/d.db", delete_mode="deactivate") as bridge, bridge.client() as scim:
        user = new_user(scim)
        assert scim.delete(f"/Users/{user['id']}").status_code == 204
        kept = scim.get(f"/Users/{user['id']}")
        assert kept.status_code == 200 and kept.json()["active"] is False
        assert scim.delete(f"/Users/{user['id']}").status_code == 204  # idempotent
        group = new_group(scim)
        assert scim.delete(f"/Groups/{group['id']}").status_code == 204  # groups are still deleted
        assert scim.get(f"/Groups/{group['id']}").status_code == 404


def test_rfc_put_semantics_when_compatibility_is_off(tmp_path: Path) -> None:
    with (
        LiveBridge(
            f"sqlite:///{tmp_path}/p.db", put_keeps_active=False, put_keeps_members=False, strict_members=True
        ) as bridge,
        bridge.client() as scim,
    ):
        user = new_user(scim, active=False)
        body = {k: v for k, v in user.items() if k not in ("active", "id", "meta")}
        assert "active" not in scim.put(f"/Users/{user['id']}", json=body).json()  # RFC: replaced by nothing
        group = new_group(scim, [user["id"]])
        cleared = scim.put(f"/Groups/{group['id']}", json={"schemas": [GROUP], "displayName": group["displayName"]})
        assert cleared.status_code == 200 and "members" not in cleared.json()
        refused = scim.patch(
            f"/Groups/{group['id']}", json=patch_ops({"op": "add", "path": "members", "value": [{"value": "ghost"}]})
        )
        assert refused.status_code == 400 and "ghost" in refused.json()["detail"]
