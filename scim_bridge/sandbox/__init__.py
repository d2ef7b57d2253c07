"""`scim-bridge sandbox`: the bridge and both emulators in one process, on one port.

The bridge reaches the emulators over real HTTP (http://127.0.0.1:PORT/emulators/…), exactly as
it reaches Cloudinary and iconik, with the sample policy and the sample directory loaded through
the SCIM service, so a newcomer sees users flow into both targets without an account anywhere.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..app import create_app
from ..config import Settings
from ..emulators import cloudinary, iconik
from ..scim.schemas import GROUP, USER

HERE = resources.files(__package__)


class PrefixRouter:
    """Sends /emulators/<name>/… to an emulator (with the prefix moved into root_path), the rest,
    lifespan included, to the bridge."""

    def __init__(self, bridge: ASGIApp, mounts: dict[str, ASGIApp]) -> None:
        self.bridge = bridge
        self.mounts = mounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for prefix, app in self.mounts.items():
                if scope["path"].startswith(prefix + "/"):
                    path = scope["path"][len(prefix) :]
                    await app(
                        {
                            **scope,
                            "path": path,
                            "raw_path": path.encode(),
                            "root_path": scope.get("root_path", "") + prefix,
                        },
                        receive,
                        send,
                    )
                    return
        await self.bridge(scope, receive, send)


def build_sandbox(
    port: int, host: str = "127.0.0.1", store: str | None = None, workdir: Path | None = None
) -> tuple[ASGIApp, dict[str, Any]]:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="scim-bridge-sandbox-"))
    base = f"http://{host}:{port}"
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    [product_key] = next(iter(cld_state.access_keys.values()))  # the "production" environment's Admin API key
    (workdir / "cloudinary.json").write_text(
        json.dumps(
            {
                "account_id": cld_state.account_id,
                "key": cld_state.key,
                "secret": cld_state.secret,
                "admin_key": product_key["api_key"],
                "admin_secret": product_key["api_secret"],
            }
        )
    )
    (workdir / "iconik.json").write_text(json.dumps({"app_id": ico_state.app_id, "auth_token": ico_state.auth_token}))
    policy = (HERE / "policy.yml").read_text()
    policy = policy.replace(
        "  cloudinary:\n    enabled: true\n",
        "  cloudinary:\n    enabled: true\n"
        f"    base_url: {base}/emulators/cloudinary\n"
        f"    credentials_file: {workdir / 'cloudinary.json'}\n",
        1,
    )
    policy = policy.replace(
        "  iconik:\n    enabled: true\n",
        "  iconik:\n    enabled: true\n"
        f"    base_url: {base}/emulators/iconik\n"
        f"    credentials_file: {workdir / 'iconik.json'}\n",
        1,
    )
    (workdir / "policy.yml").write_text(policy)
    scim_token, admin_token = "sbt_" + secrets.token_urlsafe(24), "sba_" + secrets.token_urlsafe(24)
    settings = Settings(
        host=host,
        port=port,
        store=store or f"sqlite:///{workdir / 'sandbox.db'}",
        tokens=[scim_token],
        admin_tokens=[admin_token],
        policy=workdir / "policy.yml",
    )
    bridge = create_app(settings, after_start=load_sample_directory)
    app = PrefixRouter(
        bridge, {"/emulators/cloudinary": cloudinary.build(cld_state), "/emulators/iconik": iconik.build(ico_state)}
    )
    access = {
        "scim": {"base_url": f"{base}/scim/v2", "token": scim_token},
        "cloudinary": {
            "base_url": f"{base}/emulators/cloudinary",
            "account_id": cld_state.account_id,
            "key": cld_state.key,
            "secret": cld_state.secret,
        },
        "iconik": {
            "base_url": f"{base}/emulators/iconik",
            "app_id": ico_state.app_id,
            "auth_token": ico_state.auth_token,
        },
        "admin": {"base_url": f"{base}/admin/api", "token": admin_token},
        "cli": {"store": settings.store, "policy": str(workdir / "policy.yml")},  # for explain, provision…
    }
    return app, access


async def load_sample_directory(app: Any) -> None:
    """Create the sample users and groups through the SCIM service (validation, store, queue)."""
    service = app.state.scim_service
    if await service.store.count("User"):
        return  # a sandbox restarted on its own store keeps its state
    directory = orjson.loads((HERE / "sample-directory.json").read_bytes())
    settings = app.state.settings
    base_url = f"http://{settings.host}:{settings.port}/scim/v2"
    ids = {}
    for user in directory["users"]:
        ids[user["userName"]] = (await service.create(USER, user, base_url)).record.id
    for group in directory["groups"]:
        members = [{"value": ids[name]} for name in group.pop("members_userName", []) if name in ids]
        await service.create(GROUP, {**group, "members": members}, base_url)
