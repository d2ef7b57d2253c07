"""A policy file for `scim-bridge serve` subprocesses whose targets are live emulators (the kill -9
tests): both targets enabled at the emulators' URLs, their credentials in files beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from scim_bridge.emulators import cloudinary, iconik


def emulated_policy(
    folder: Path,
    cld_state: cloudinary.CloudinaryState,
    cld_url: str,
    ico_state: iconik.IconikState,
    ico_url: str,
    **rules: Any,
) -> Path:
    """`folder`/policy.yml with the targets at the emulators (500 calls/s each) and `rules` beside them."""
    (folder / "cld.json").write_text(
        json.dumps({"account_id": cld_state.account_id, "key": cld_state.key, "secret": cld_state.secret})
    )
    (folder / "ico.json").write_text(json.dumps({"app_id": ico_state.app_id, "auth_token": ico_state.auth_token}))
    targets = {
        name: {"enabled": True, "base_url": url, "credentials_file": str(folder / file), "rate": 500}
        for name, url, file in (("cloudinary", cld_url, "cld.json"), ("iconik", ico_url, "ico.json"))
    }
    policy = folder / "policy.yml"
    policy.write_text(yaml.safe_dump({"targets": targets, **rules}))
    return policy
