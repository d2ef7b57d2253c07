"""Acme DAM's policy sections: `targets.acme` (its roles and default) and `access.acme` (no grants:
the ABC's defaults). What a new target writes instead of editing sync/policy.py or sync/access.py."""

from __future__ import annotations

from typing import ClassVar

from scim_bridge.sync.access import TargetSection
from scim_bridge.sync.policy import TargetPolicy


class AcmePolicy(TargetPolicy):
    ROLES: ClassVar[tuple[str, ...]] = ("viewer", "editor", "owner")
    EXTERNAL_ROLES: ClassVar[tuple[str, ...]] = ("viewer",)
    ADMIN_ROLES: ClassVar[tuple[str, ...]] = ("owner",)
    base_url: str = "https://api.acme.example"
    default_role: str = "viewer"
    credentials_env: dict[str, str] = {"token": "ACME_TOKEN"}


class AcmeAccess(TargetSection):
    pass
