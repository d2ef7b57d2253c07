from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scim_bridge.emulators import cloudinary, iconik
from tests.emulators.live import LiveApp
from tests.live import LiveBridge


@dataclass
class World:
    """The bridge and both emulators, each on its own port, talking real HTTP."""

    bridge: LiveBridge
    scim: httpx.Client
    cloudinary: cloudinary.CloudinaryState
    iconik: iconik.IconikState
    cloudinary_url: str
    iconik_url: str
    policy: Path | None = None  # the policy file (also when the bridge runs without a worker)

    def converge(self, predicate: Callable[[World], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate(self):
                    return
            except (KeyError, StopIteration, IndexError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "the targets did not converge in time:\n" + json.dumps(self.snapshot(), indent=1)[:4000]
                )
            time.sleep(0.05)

    def snapshot(self) -> dict[str, Any]:
        return {
            "cloudinary": httpx.get(f"{self.cloudinary_url}/_emulator/state").json(),
            "iconik": httpx.get(f"{self.iconik_url}/_emulator/state").json(),
        }

    # what a reviewer would look at, by email
    def cld_user(self, email: str) -> dict[str, Any] | None:
        return next((u for u in self.cloudinary.users.values() if u["email"] == email), None)

    def cld_groups_of(self, email: str) -> set[str]:
        user = self.cld_user(email)
        return {
            self.cloudinary.groups[g]["name"]
            for g, ids in self.cloudinary.members.items()
            if user and user["id"] in ids
        }

    # what a person can reach: through the groups it is a member of (direct grants only)
    def cld_folder_roles(self, email: str) -> dict[str, set[str]]:
        """folder path → roles the user's groups hold there (a disabled account reaches nothing)."""
        user = self.cld_user(email)
        if not user or not user["enabled"]:
            return {}
        groups = {g for g, ids in self.cloudinary.members.items() if user["id"] in ids}
        reach: dict[str, set[str]] = {}
        for a in list(self.cloudinary.role_assignments):
            folder = self.cloudinary.folders.get((a.get("policy_parameters") or {}).get("folder_id", ""))
            if folder and a["principal_type"] == "group" and a["principal_id"] in groups:
                reach.setdefault(folder["path"], set()).add(a["role_id"].rsplit("::", 1)[-1])
        return reach

    def ico_collection_rights(self, email: str) -> dict[str, set[str]]:
        """collection title → permissions the user's groups hold there (an inactive account reaches nothing)."""
        user = self.ico_user(email)
        if not user or user["status"] != "ACTIVE":
            return {}
        reach: dict[str, set[str]] = {}
        for key, acl in list(self.iconik.acls.items()):
            collection = self.iconik.collections.get(key.split("/", 1)[1])
            for group_id, entry in acl.get("groups", {}).items():
                if collection and group_id in user["groups"] and collection["status"] != "DELETED":
                    reach.setdefault(collection["title"], set()).update(entry["permissions"])
        return reach

    def ico_projects_of(self, email: str) -> set[str]:
        user = self.ico_user(email)
        return {
            self.iconik.projects[p]["name"]
            for p, members in list(self.iconik.project_members.items())
            if user and user["id"] in members and p in self.iconik.projects
        }

    def ico_user(self, email: str) -> dict[str, Any] | None:
        return next((u for u in self.iconik.users.values() if u["email"] == email), None)

    def ico_groups_of(self, email: str) -> set[str]:
        user = self.ico_user(email)
        return {self.iconik.groups[g]["name"] for g in (user or {}).get("groups", []) if g in self.iconik.groups}


POLICY = {
    "roles": [
        {"when": {"group": "Legal Reviewers"}, "cloudinary": "media_library_admin", "iconik": "STANDARD"},
        {"when": {"attribute": {"department": "Post Production"}}, "iconik": "POWER"},
    ],
    "groups": {"include": ["*"], "exclude": ["project-*"]},
    "derived_groups": ["dept-{department}"],
    "deprovision": "disable",
    "guardrails": {"external": [{"attribute": {"userType": "External*"}}]},
}


def make_world(
    tmp_path: Path,
    store_url: str,
    target_rate: float = 200,
    before_start: Callable[[cloudinary.CloudinaryState], None] | None = None,
    cloudinary_switches: cloudinary.CloudinarySwitches | None = None,
    sync: bool = True,
    iconik_credentials: dict[str, str] | None = None,
    cloudinary_webhooks: bool = False,
    **policy_changes: Any,
) -> Iterator[World]:
    """sync=False: the bridge serves SCIM and the admin API with no worker (policy.yml is still
    written, for the CLI commands a test runs against the same store). iconik_credentials: more
    keys in the iconik credentials file (e.g. webhook_secret). cloudinary_webhooks: the receiver
    takes the notifications /_emulator/notify signs (the product environment's secret)."""
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    if before_start is not None:
        before_start(cld_state)
    with LiveApp(cloudinary.build(cld_state, cloudinary_switches)) as cld, LiveApp(iconik.build(ico_state)) as ico:
        [product_key] = next(iter(cld_state.access_keys.values()))  # the default product environment's key
        (tmp_path / "cld.json").write_text(
            json.dumps(
                {
                    "account_id": cld_state.account_id,
                    "key": cld_state.key,
                    "secret": cld_state.secret,
                    "admin_key": product_key["api_key"],
                    "admin_secret": product_key["api_secret"],
                    **({"webhook_secret": product_key["api_secret"]} if cloudinary_webhooks else {}),
                }
            )
        )
        (tmp_path / "ico.json").write_text(
            json.dumps({"app_id": ico_state.app_id, "auth_token": ico_state.auth_token, **(iconik_credentials or {})})
        )
        policy = {
            **POLICY,
            **policy_changes,
            "targets": {
                "cloudinary": {
                    "enabled": True,
                    "base_url": cld.url,
                    "credentials_file": str(tmp_path / "cld.json"),
                    "rate": target_rate,
                },
                "iconik": {
                    "enabled": True,
                    "base_url": ico.url,
                    "credentials_file": str(tmp_path / "ico.json"),
                    "rate": target_rate,
                    "service_account_email": "bridge-service@example.com",
                },
            },
        }
        (tmp_path / "policy.yml").write_text(yaml.safe_dump(policy))
        with (
            LiveBridge(
                store_url, policy=tmp_path / "policy.yml" if sync else None, admin_tokens=["admin-token-for-tests"]
            ) as bridge,
            bridge.client() as scim,
        ):
            yield World(bridge, scim, cld_state, ico_state, cld.url, ico.url, tmp_path / "policy.yml")


@pytest.fixture
def world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, bridge_store_url)
