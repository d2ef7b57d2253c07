"""`scim-bridge sandbox`: the bridge and both emulators in one process, on one port.

The bridge reaches the emulators over real HTTP (http://127.0.0.1:PORT/emulators/…), exactly as
it reaches Cloudinary and iconik, with the sample policy and the sample directory loaded through
the SCIM service, so a newcomer sees users flow into both targets without an account anywhere.

It says which store and policy file it runs on, so `explain`, `plan`, `reconcile`, `review` and
`audit` can be pointed at them; both webhook receivers are on (Cloudinary's secret is the
production environment's API secret, which /_emulator/notify signs with; the iconik emulator has
webhooks for collections and assets that send the X-Bridge-Secret header). `--policy FILE` runs an
edited policy (its targets are pointed at the emulators), `--store URL` keeps the directory and
the audit trail between runs: the emulators start empty each time, so on a kept store the sandbox
forgets what it had provisioned and syncs the whole directory again, under the policy given.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import uuid
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

from ..app import create_app
from ..config import Settings
from ..emulators import cloudinary, iconik
from ..scim.schemas import GROUP, USER
from ..store import STANDARD_LANE

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
    port: int,
    host: str = "127.0.0.1",
    store: str | None = None,
    workdir: Path | None = None,
    policy_file: Path | None = None,
) -> tuple[ASGIApp, dict[str, Any]]:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="scim-bridge-sandbox-"))
    base = f"http://{host}:{port}"
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    [product_key] = next(iter(cld_state.access_keys.values()))  # the "production" environment's Admin API key
    iconik_secret = "sbw_" + secrets.token_urlsafe(24)
    (workdir / "cloudinary.json").write_text(
        json.dumps(
            {
                "account_id": cld_state.account_id,
                "key": cld_state.key,
                "secret": cld_state.secret,
                "admin_key": product_key["api_key"],
                "admin_secret": product_key["api_secret"],
                "webhook_secret": product_key["api_secret"],  # what /_emulator/notify signs with
            }
        )
    )
    (workdir / "iconik.json").write_text(
        json.dumps({"app_id": ico_state.app_id, "auth_token": ico_state.auth_token, "webhook_secret": iconik_secret})
    )
    for event_type in ("collections", "assets"):  # as an operator would create them in iconik
        _iconik_webhook(ico_state, event_type, f"{base}/webhooks/iconik", iconik_secret)
    targets = {
        "cloudinary": {
            "base_url": f"{base}/emulators/cloudinary",
            "credentials_file": str(workdir / "cloudinary.json"),
        },
        "iconik": {"base_url": f"{base}/emulators/iconik", "credentials_file": str(workdir / "iconik.json")},
    }
    (workdir / "policy.yml").write_text(
        _pointed(policy_file.read_text(), targets) if policy_file else _sample_policy(targets)
    )
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
        "webhooks": {
            "cloudinary": {
                "url": f"{base}/webhooks/cloudinary",
                "notify": f"{base}/emulators/cloudinary/_emulator/notify",
            },
            "iconik": {"url": f"{base}/webhooks/iconik", "header": "X-Bridge-Secret", "secret": iconik_secret},
        },
        "edited_policy": str(policy_file) if policy_file else None,
    }
    return app, access


def _sample_policy(targets: dict[str, dict[str, str]]) -> str:
    """The sample policy, comments kept, with its targets pointed at the emulators."""
    policy = (HERE / "policy.yml").read_text()
    for name, where in targets.items():
        policy = policy.replace(
            f"  {name}:\n    enabled: true\n",
            f"  {name}:\n    enabled: true\n"
            f"    base_url: {where['base_url']}\n"
            f"    credentials_file: {where['credentials_file']}\n",
            1,
        )
    return policy


def _pointed(text: str, targets: dict[str, dict[str, str]]) -> str:
    """An edited policy with both targets on and pointed at the emulators (its other target
    settings, such as rates and default roles, kept)."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"the policy file is not YAML: {error}") from None
    if not isinstance(document, dict):
        raise ValueError("the policy file is not a YAML mapping")
    declared = document.setdefault("targets", {}) or {}
    document["targets"] = declared
    for name, where in targets.items():
        declared[name] = {**(declared.get(name) or {}), "enabled": True, **where}
    return "# the sandbox's copy of an edited policy, its targets pointed at the emulators\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def _iconik_webhook(state: iconik.IconikState, event_type: str, url: str, secret: str) -> None:
    stamp = datetime.now(UTC).isoformat()
    hook_id = str(uuid.uuid4())
    state.webhooks[hook_id] = {
        "id": hook_id,
        "name": f"scim-bridge sandbox: {event_type}",
        "description": "activity and new content for the bridge",
        "url": url,
        "event_type": event_type,
        "realm": None,
        "operation": None,
        "object_id": None,
        "status": "ENABLED",
        "headers": {"X-Bridge-Secret": secret},
        "query": None,
        "date_created": stamp,
        "date_modified": stamp,
    }


async def load_sample_directory(app: Any) -> None:
    """Create the sample users and groups through the SCIM service (validation, store, queue)."""
    service = app.state.scim_service
    if await service.store.count("User"):
        await _provision_again(service.store)  # a kept store: its directory, into empty emulators
        return
    directory = orjson.loads((HERE / "sample-directory.json").read_bytes())
    settings = app.state.settings
    base_url = f"http://{settings.host}:{settings.port}/scim/v2"
    ids = {}
    for user in directory["users"]:
        ids[user["userName"]] = (await service.create(USER, user, base_url)).record.id
    for group in directory["groups"]:
        members = [{"value": ids[name]} for name in group.pop("members_userName", []) if name in ids]
        await service.create(GROUP, {**group, "members": members}, base_url)


async def _provision_again(store: Any) -> None:
    """A kept store's directory into this run's emulators, which start empty: what the store says
    was provisioned (ID map, resolved folders and collections, last members) named objects of the
    last run's emulators, so it is forgotten, and every user and group is queued (the sync workers
    start after this). The directory, the audit trail and the guardrail decisions stay."""
    namespaces = ["access", "members", "dead-letters", "quarantine"]  # a quarantine judged the old emulators
    for target in ("cloudinary", "iconik"):  # the sandbox's two emulators
        namespaces += [f"idmap:{target}", f"idmap-groups:{target}", f"quarantine-parked:{target}"]
    for namespace in namespaces:
        for key, _ in await store.kv_items(namespace):
            await store.kv_delete(namespace, key)
    for resource_type in ("User", "Group"):
        async for record in store.scan(resource_type):
            await store.enqueue(resource_type, record.id, STANDARD_LANE)
