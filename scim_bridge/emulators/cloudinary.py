"""Cloudinary Account (Provisioning) API emulator: users, user groups and membership.

Built from Cloudinary's own OpenAPI document (../shared/specs/cloudinary/provisioning.yml,
v0.2.1) and the live behaviour in research/cloudinary.md §1, each departure behind a switch:
HTTP Basic with the account API key and secret; 200 on every success, creates included; the
v1_1 error body `{"error": {"message": …}}`; array query parameters in the three encodings
SDKs send (`ids=a,b`, `ids[]=a&ids[]=b`, `ids=a&ids=b`); JSON or form bodies; string booleans;
an hourly quota with `X-FeatureRateLimit-*` headers and 420 or 429 past it.

It shares no code with the bridge (DESIGN.md): a mistake in the translator must not be hidden
by the same mistake here.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import cloudinary_media
from .email_index import EmailIndex
from .faults import FaultInjector, Faults, fault_routes_handler
from .ratelimit import FixedWindow

ROLES = ("master_admin", "admin", "billing", "technical_admin", "reports", "media_library_admin", "media_library_user")


@dataclass
class CloudinarySwitches:
    """Documented differences between Cloudinary's spec and its live API (research/cloudinary.md)."""

    live_group_delete_body: bool = True  # live: {"ok": true}; spec: {"message": "ok"}
    live_member_add_body: bool = True  # live: {"users": [...]}; spec: the one user added
    throttle_status: int = 429  # 420 ("max usage rate exceeded") also occurs
    hourly_limit: int = 0  # calls per hour; 0 = unlimited. The real number is undocumented.
    legacy_user_groups: bool = False  # spec ≤ 0.1.6 embedded "groups" in User
    # "roles": Roles and Permissions (folder invite and the Permissions API work); "legacy": the
    # older model, where both answer 403 (research/cloudinary.md §3.1). GET …/permissions/roles tells.
    permission_model: Literal["roles", "legacy"] = "roles"
    # The Admin API (/v1_1/{cloud_name}/…) takes a product environment's key; True also lets the
    # account (Provisioning) key in, which Cloudinary does not: a convenience, off by default.
    admin_api_account_key: bool = False


@dataclass
class CloudinaryState:
    account_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    key: str = field(default_factory=lambda: str(secrets.randbelow(10**15)).zfill(15))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(20))
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # group id → user ids, in order added
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # product environments (sub-accounts)
    access_keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # environment id → keys
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)  # external_id → folder (per environment)
    role_assignments: list[dict[str, Any]] = field(default_factory=list)  # the one grant model (cloudinary_media)
    custom_roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # Permissions API roles by id
    custom_policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # Cedar policies by id
    calls: list[dict[str, Any]] = field(default_factory=list)  # every API call, for tests and reviews

    def __post_init__(self) -> None:
        # One product environment, cloud name "production", with one enabled key, so the Admin API
        # answers without setup; its key and secret are in /_emulator/state.
        if not self.environments:
            now = _now()
            environment: dict[str, Any] = {
                "id": uuid.uuid4().hex[:31],
                "name": "Production",
                "cloud_name": "production",
                "enabled": True,
                "created_at": now,
                "updated_at": now,
            }
            self.environments[environment["id"]] = environment
            self.access_keys[environment["id"]] = [_access_key("default", True)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _access_key(name: str, enabled: bool) -> dict[str, Any]:
    now = _now()
    return {
        "name": name,
        "api_key": str(secrets.randbelow(10**15)).zfill(15),
        "api_secret": secrets.token_urlsafe(20),
        "enabled": enabled,
        "created_at": now,
        "updated_at": now,
    }


def _new_id() -> str:
    return uuid.uuid4().hex[:30]  # live ids are 30–32 lowercase hex characters


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


def _array(request: Request, name: str) -> list[str] | None:
    """A list query parameter in any of the three encodings the SDKs use."""
    values = request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]")
    if not values:
        return None
    return [item for value in values for item in value.split(",") if item]


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    return str(value).lower() == "true"


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form: dict[str, Any] = {}
        for key, value in parse_qsl(raw.decode()):
            if key.endswith("[]"):
                form.setdefault(key[:-2], []).append(value)
            else:
                form[key] = value
        return form
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise _Refusal("Invalid JSON body", 400) from None
    if not isinstance(parsed, dict):
        raise _Refusal("Invalid JSON body", 400)
    return parsed


class _Refusal(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def build(
    state: CloudinaryState | None = None, switches: CloudinarySwitches | None = None, faults: Faults | None = None
) -> Any:
    """The emulator as an ASGI app; its API lives at /v1_1/provisioning/accounts/{account_id}/."""
    state = state or CloudinaryState()
    switches = switches or CloudinarySwitches()
    faults = faults or Faults()
    window = FixedWindow(switches.hourly_limit)
    base = "/v1_1/provisioning/accounts/{account_id}"

    def user_view(user: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in user.items() if v is not None}
        if switches.legacy_user_groups:
            view["groups"] = [
                {"id": g, "name": state.groups[g]["name"]} for g, ids in state.members.items() if user["id"] in ids
            ]
        return view

    def member_view(user_id: str) -> dict[str, Any]:
        user = state.users[user_id]
        return {"id": user["id"], "name": user["name"], "email": user["email"]}

    # A member add or remove answers the group's whole member list (live behaviour): with a
    # 10,000-member group, encoding it per call made this emulator, not the bridge, the pace of
    # bench/initial_load.py. Each member's JSON is encoded once and kept while its name and e-mail
    # stay the same; the body is their join, byte for byte what JSONResponse would send.
    encoded_members: dict[str, tuple[str, str, bytes]] = {}

    def members_body(group_id: str) -> Response:
        parts = []
        for user_id in state.members[group_id]:
            user = state.users[user_id]
            cached = encoded_members.get(user_id)
            if cached is None or cached[0] != user["name"] or cached[1] != user["email"]:
                fragment = json.dumps(member_view(user_id), ensure_ascii=False, separators=(",", ":")).encode()
                cached = encoded_members[user_id] = (user["name"], user["email"], fragment)
            parts.append(cached[2])
        return Response(b'{"users":[' + b",".join(parts) + b"]}", media_type="application/json")

    def find_user(user_id: str) -> dict[str, Any]:
        if user_id not in state.users:
            raise _Refusal("not found", 404)
        return state.users[user_id]

    def find_group(group_id: str) -> dict[str, Any]:
        if group_id not in state.groups:
            raise _Refusal("not found", 404)
        return state.groups[group_id]

    emails = EmailIndex(state.users)

    def email_taken(email: str, other_than: str | None = None) -> bool:
        return emails.find(email, other_than) is not None

    def apply_user_fields(user: dict[str, Any], body: dict[str, Any]) -> None:
        if "role" in body and body["role"] is not None:
            if body["role"] not in ROLES:
                raise _Refusal(f"Invalid role {body['role']}", 400)
            user["role"] = body["role"]
        for name in ("name", "email", "first_name", "last_name"):
            if body.get(name) is not None:
                if not isinstance(body[name], str) or not body[name].strip():
                    raise _Refusal(f"Invalid {name}", 400)
                user[name] = body[name]
        if "enabled" in body and body["enabled"] is not None:
            user["enabled"] = _boolean(body["enabled"])
        if body.get("sub_account_ids") is not None:
            unknown = [e for e in body["sub_account_ids"] if e not in state.environments]
            if unknown:
                raise _Refusal(f"Cannot find sub account with id {unknown[0]}", 404)
            user["all_sub_accounts"] = False
            user["sub_account_ids"] = list(body["sub_account_ids"])

    # users -------------------------------------------------------------------------------------
    async def list_users(request: Request) -> JSONResponse:
        ids, emails = _array(request, "ids"), _array(request, "emails")
        users = list(state.users.values())
        if ids is not None:
            users = [u for u in users if u["id"] in ids]
        elif emails is not None:
            wanted = {e.lower() for e in emails}
            users = [u for u in users if u["email"].lower() in wanted]
        else:
            prefix = request.query_params.get("prefix")
            if prefix:
                users = [u for u in users if u["name"].lower().startswith(prefix.lower())]
            environment_id = request.query_params.get("sub_account_id")
            if environment_id:
                if environment_id not in state.environments:  # live text, from the SDKs' tests
                    raise _Refusal(f"Cannot find sub account with id {environment_id}", 404)
                users = [
                    u for u in users if u.get("all_sub_accounts") or environment_id in u.get("sub_account_ids", [])
                ]
            pending = _boolean(request.query_params.get("pending"))
            if pending:
                users = [u for u in users if u["pending"]]
            status = request.query_params.get("status")  # pycloudinary 2026 sends it instead of pending
            if status in ("pending", "active"):
                users = [u for u in users if u["pending"] == (status == "pending")]
            page_size = int(request.query_params.get("page_size") or 0)
            if page_size:
                page = max(1, int(request.query_params.get("page") or 1))
                users = users[(page - 1) * page_size : page * page_size]
        return JSONResponse({"users": [user_view(u) for u in users]})

    async def create_user(request: Request) -> JSONResponse:
        body = await _body(request)
        if not body.get("name") or not body.get("email"):
            raise _Refusal("name and email are required", 400)
        if email_taken(str(body["email"])):
            # The live text is not public (research/cloudinary.md §1.4): this one is ours.
            raise _Refusal(f"User with email {body['email']} already exists", 409)
        now = _now()
        user: dict[str, Any] = {
            "id": _new_id(),
            "name": None,
            "role": "media_library_user",
            "email": None,
            "pending": True,
            "enabled": True,
            "created_at": now,
            "updated_at": now,
            "last_login": None,
            "all_sub_accounts": True,
        }
        apply_user_fields(user, body)
        state.users[user["id"]] = user
        emails.added(user)
        return JSONResponse(user_view(user))

    async def get_user(request: Request) -> JSONResponse:
        return JSONResponse(user_view(find_user(request.path_params["user_id"])))

    async def update_user(request: Request) -> JSONResponse:
        user = find_user(request.path_params["user_id"])
        body = await _body(request)
        if body.get("email") and email_taken(str(body["email"]), other_than=user["id"]):
            raise _Refusal(f"User with email {body['email']} already exists", 409)
        email = user["email"]
        apply_user_fields(user, body)
        if user["email"] != email:
            emails.changed()
        user["updated_at"] = _now()
        return JSONResponse(user_view(user))

    async def delete_user(request: Request) -> JSONResponse:
        user = find_user(request.path_params["user_id"])
        del state.users[user["id"]]
        for ids in state.members.values():
            if user["id"] in ids:
                ids.remove(user["id"])
        return JSONResponse({"message": "ok"})

    async def user_groups(request: Request) -> JSONResponse:
        user = find_user(request.path_params["user_id"])
        return JSONResponse(
            {
                "groups": [
                    {"id": g, "name": state.groups[g]["name"]} for g, ids in state.members.items() if user["id"] in ids
                ]
            }
        )

    # user groups -------------------------------------------------------------------------------
    def group_view(group: dict[str, Any], extended: bool) -> dict[str, Any]:
        view = {"id": group["id"], "name": group["name"]}
        if extended:
            view.update(
                users=[member_view(u) for u in state.members[group["id"]]],
                created_at=group["created_at"],
                updated_at=group["updated_at"],
            )
        return view

    async def list_groups(request: Request) -> JSONResponse:
        extended = bool(_boolean(request.query_params.get("extended_details")))
        return JSONResponse({"user_groups": [group_view(g, extended) for g in state.groups.values()]})

    async def create_group(request: Request) -> JSONResponse:
        body = await _body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Refusal("name is required", 400)
        if any(g["name"].lower() == name.lower() for g in state.groups.values()):
            raise _Refusal(f"User group {name} already exists", 409)
        now = _now()
        group = {"id": _new_id(), "name": name, "created_at": now, "updated_at": now}
        state.groups[group["id"]] = group
        state.members[group["id"]] = []
        return JSONResponse(group_view(group, False))

    async def get_group(request: Request) -> JSONResponse:
        extended = bool(_boolean(request.query_params.get("extended_details")))
        return JSONResponse(group_view(find_group(request.path_params["group_id"]), extended))

    async def update_group(request: Request) -> JSONResponse:
        group = find_group(request.path_params["group_id"])
        name = (await _body(request)).get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Refusal("name is required", 400)
        if any(g["name"].lower() == name.lower() and g["id"] != group["id"] for g in state.groups.values()):
            raise _Refusal(f"User group {name} already exists", 409)
        group.update(name=name, updated_at=_now())
        return JSONResponse(group_view(group, False))

    async def delete_group(request: Request) -> JSONResponse:
        group = find_group(request.path_params["group_id"])
        del state.groups[group["id"]]
        del state.members[group["id"]]
        return JSONResponse({"ok": True} if switches.live_group_delete_body else {"message": "ok"})

    async def group_users(request: Request) -> Response:
        group = find_group(request.path_params["group_id"])
        return members_body(group["id"])

    async def add_member(request: Request) -> Response:
        group = find_group(request.path_params["group_id"])
        user = find_user(request.path_params["user_id"])
        if user["id"] not in state.members[group["id"]]:
            state.members[group["id"]].append(user["id"])
        if switches.live_member_add_body:
            return members_body(group["id"])
        return JSONResponse(member_view(user["id"]))

    async def remove_member(request: Request) -> Response:
        group = find_group(request.path_params["group_id"])
        find_user(request.path_params["user_id"])
        ids = state.members[group["id"]]
        if request.path_params["user_id"] in ids:
            ids.remove(request.path_params["user_id"])
        return members_body(group["id"])

    # product environments (sub-accounts) and their access keys (research/cloudinary.md §1.6–§1.7) --
    def environment_view(environment: dict[str, Any]) -> dict[str, Any]:
        keys = [
            {"key": k["api_key"], "secret": k["api_secret"], "enabled": k["enabled"]}
            for k in state.access_keys[environment["id"]]
        ]
        return {**environment, "api_access_keys": keys}

    def find_environment(environment_id: str) -> dict[str, Any]:
        if environment_id not in state.environments:
            raise _Refusal(f"Cannot find sub account with id {environment_id}", 404)
        return state.environments[environment_id]

    def new_environment(name: str, cloud_name: str | None, enabled: bool, attributes: Any) -> dict[str, Any]:
        now = _now()
        environment: dict[str, Any] = {
            "id": uuid.uuid4().hex[:31],
            "name": name,
            "cloud_name": cloud_name or f"cloud{secrets.token_hex(4)}",
            "enabled": enabled,
            "created_at": now,
            "updated_at": now,
        }
        if attributes is not None:
            environment["custom_attributes"] = attributes
        state.environments[environment["id"]] = environment
        state.access_keys[environment["id"]] = [new_key("default", True)]
        return environment

    new_key = _access_key

    async def list_environments(request: Request) -> JSONResponse:
        environments = list(state.environments.values())
        ids = _array(request, "ids")
        if ids is not None:
            environments = [e for e in environments if e["id"] in ids]
        else:
            enabled = request.query_params.get("enabled")
            if enabled is not None:
                environments = [e for e in environments if e["enabled"] == _boolean(enabled)]
            prefix = request.query_params.get("prefix")
            if prefix:
                environments = [e for e in environments if e["name"].lower().startswith(prefix.lower())]
        return JSONResponse({"sub_accounts": [environment_view(e) for e in environments]})

    async def create_environment(request: Request) -> JSONResponse:
        body = await _body(request)
        if not body.get("name"):
            raise _Refusal("name is required", 400)
        if body.get("base_sub_account_id"):
            find_environment(str(body["base_sub_account_id"]))
        environment = new_environment(
            body["name"],
            body.get("cloud_name"),
            _boolean(body.get("enabled", True)) is not False,
            body.get("custom_attributes"),
        )
        return JSONResponse(environment_view(environment))

    async def get_environment(request: Request) -> JSONResponse:
        return JSONResponse(environment_view(find_environment(request.path_params["sub_account_id"])))

    async def update_environment(request: Request) -> JSONResponse:
        environment = find_environment(request.path_params["sub_account_id"])
        body = await _body(request)
        for name in ("name", "cloud_name", "custom_attributes"):
            if body.get(name) is not None:
                environment[name] = body[name]
        if body.get("enabled") is not None:
            environment["enabled"] = _boolean(body["enabled"])
        environment["updated_at"] = _now()
        return JSONResponse(environment_view(environment))

    async def delete_environment(request: Request) -> JSONResponse:
        environment = find_environment(request.path_params["sub_account_id"])
        del state.environments[environment["id"]], state.access_keys[environment["id"]]
        return JSONResponse({"message": "ok"})

    async def list_keys(request: Request) -> JSONResponse:
        keys = state.access_keys[find_environment(request.path_params["sub_account_id"])["id"]]
        return JSONResponse({"access_keys": keys, "total": len(keys)})

    async def create_key(request: Request) -> JSONResponse:
        environment = find_environment(request.path_params["sub_account_id"])
        body = await _body(request)
        key = new_key(str(body.get("name") or "key"), _boolean(body.get("enabled", True)) is not False)
        state.access_keys[environment["id"]].append(key)
        return JSONResponse(key)  # the only answer that carries the secret of a new key

    def find_key(request: Request) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        keys = state.access_keys[find_environment(request.path_params["sub_account_id"])["id"]]
        key = next((k for k in keys if k["api_key"] == request.path_params["key"]), None)
        if key is None:
            raise _Refusal("not found", 404)
        return keys, key

    async def update_key(request: Request) -> JSONResponse:
        _, key = find_key(request)
        body = await _body(request)
        if body.get("name") is not None:
            key["name"] = body["name"]
        if body.get("enabled") is not None:
            key["enabled"] = _boolean(body["enabled"])
        key["updated_at"] = _now()
        return JSONResponse(key)

    async def delete_key(request: Request) -> JSONResponse:
        keys, key = find_key(request)
        keys.remove(key)
        return JSONResponse({"message": "ok"})

    async def delete_keys_by_name(request: Request) -> JSONResponse:
        keys = state.access_keys[find_environment(request.path_params["sub_account_id"])["id"]]
        name = request.query_params.get("name")
        if not name:
            raise _Refusal("name is required", 400)
        keys[:] = [k for k in keys if k["name"] != name]
        return JSONResponse({"message": "ok"})

    # emulator control (not part of Cloudinary's API) -----------------------------------------------
    async def snapshot(request: Request) -> JSONResponse:
        # ?names=true adds "by_name": the same state with names beside ids (emulator control only;
        # no Cloudinary API shape changes).
        extra = {"by_name": _by_name(state)} if request.query_params.get("names") in ("1", "true", "yes") else {}
        return JSONResponse(
            {
                **extra,
                "account_id": state.account_id,
                "users": list(state.users.values()),
                "groups": [{**g, "members": state.members[g["id"]]} for g in state.groups.values()],
                "calls": len(state.calls),
                **cloudinary_media.snapshot(state, switches),
            }
        )

    routes = [
        Route(f"{base}/users", list_users, methods=["GET"]),
        Route(f"{base}/users", create_user, methods=["POST"]),
        Route(f"{base}/users/{{user_id}}", get_user, methods=["GET"]),
        Route(f"{base}/users/{{user_id}}", update_user, methods=["PUT"]),
        Route(f"{base}/users/{{user_id}}", delete_user, methods=["DELETE"]),
        Route(f"{base}/users/{{user_id}}/groups", user_groups, methods=["GET"]),
        Route(f"{base}/user_groups", list_groups, methods=["GET"]),
        Route(f"{base}/user_groups", create_group, methods=["POST"]),
        Route(f"{base}/user_groups/{{group_id}}", get_group, methods=["GET"]),
        Route(f"{base}/user_groups/{{group_id}}", update_group, methods=["PUT"]),
        Route(f"{base}/user_groups/{{group_id}}", delete_group, methods=["DELETE"]),
        Route(f"{base}/user_groups/{{group_id}}/users", group_users, methods=["GET"]),
        Route(f"{base}/user_groups/{{group_id}}/users/{{user_id}}", add_member, methods=["POST"]),
        Route(f"{base}/user_groups/{{group_id}}/users/{{user_id}}", remove_member, methods=["DELETE"]),
        Route(f"{base}/sub_accounts", list_environments, methods=["GET"]),
        Route(f"{base}/sub_accounts", create_environment, methods=["POST"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}", get_environment, methods=["GET"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}", update_environment, methods=["PUT"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}", delete_environment, methods=["DELETE"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}/access_keys", list_keys, methods=["GET"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}/access_keys", create_key, methods=["POST"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}/access_keys", delete_keys_by_name, methods=["DELETE"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}/access_keys/{{key}}", update_key, methods=["PUT"]),
        Route(f"{base}/sub_accounts/{{sub_account_id}}/access_keys/{{key}}", delete_key, methods=["DELETE"]),
        *cloudinary_media.routes(state, switches),
        Route("/_emulator/state", snapshot, methods=["GET"]),
        Route("/_emulator/faults", fault_routes_handler(faults), methods=["GET", "PUT"]),
    ]

    async def refusal(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, _Refusal)
        return _error(exc.message, exc.status)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error("not found", 404)

    app = Starlette(routes=routes, exception_handlers={_Refusal: refusal, 404: not_found, 405: not_found})
    app.state.emulator = state

    async def throttled(scope: Scope, receive: Receive, send: Send, retry_after: int) -> None:
        await JSONResponse(
            {"error": {"message": "Rate limit exceeded"}},
            status_code=switches.throttle_status,
            headers={
                "X-FeatureRateLimit-Limit": str(switches.hourly_limit or 0),
                "X-FeatureRateLimit-Remaining": "0",
                "X-FeatureRateLimit-Reset": formatdate(time.time() + retry_after, usegmt=True),
            },
        )(scope, receive, send)

    return _Guard(
        FaultInjector(
            app,
            faults,
            throttled,
            lambda status: {"error": {"message": "Internal error"}},
            # what the guard answers to wrong credentials: the Permissions API's body on /v2/, else v1_1's
            lambda path: cloudinary_media.unauthorised_body(path) or {"error": {"message": "Invalid credentials"}},
        ),
        state,
        window,
        throttled,
        switches,
    )


class _Guard:
    """Authentication, the hourly quota and its headers, and the call log, around every API call."""

    def __init__(
        self, app: Any, state: CloudinaryState, window: FixedWindow, throttled: Any, switches: CloudinarySwitches
    ) -> None:
        self.app, self.state, self.window, self.throttled, self.switches = app, state, window, throttled, switches
        self.emulator = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The Permissions API's public endpoints take no credentials (and so count against no quota here).
        if scope["type"] != "http" or scope["path"].startswith(("/_emulator/", cloudinary_media.PUBLIC_PREFIX)):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not self._authorised(headers.get(b"authorization", b"").decode("latin-1"), scope["path"]):
            v2_body = cloudinary_media.unauthorised_body(scope["path"])
            await (JSONResponse(v2_body, status_code=401) if v2_body else _error("Invalid credentials", 401))(
                scope, receive, send
            )
            return
        allowed, remaining, reset = self.window.take()
        if not allowed:
            await self.throttled(scope, receive, send, retry_after=int(reset - time.time()) + 1)
            return
        self.state.calls.append({"method": scope["method"], "path": scope["path"]})
        extra = [
            (b"x-featureratelimit-limit", str(self.window.limit).encode()),
            (b"x-featureratelimit-remaining", str(remaining).encode()),
            (b"x-featureratelimit-reset", formatdate(reset, usegmt=True).encode()),
            (b"x-request-id", uuid.uuid4().hex.encode()),
        ]

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                # A throttled answer carries its own reset (a storm's, not the hour's): sending both
                # would give the client two X-FeatureRateLimit-Reset values, which Cloudinary never does.
                own = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []), *(h for h in extra if h[0] not in own)]}
            await send(message)

        await self.app(scope, receive, with_headers)

    def _authorised(self, authorization: str, path: str) -> bool:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            key, _, secret = base64.b64decode(credential, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        cloud_name = cloudinary_media.admin_cloud_name(path)
        if cloud_name is not None:
            return cloudinary_media.admin_credentials_ok(self.state, self.switches, cloud_name, key, secret)
        account = path.split("/accounts/", 1)[1].split("/", 1)[0] if "/accounts/" in path else ""
        return (
            secrets.compare_digest(key, self.state.key)
            and secrets.compare_digest(secret, self.state.secret)
            and account == self.state.account_id
        )


def _by_name(state: CloudinaryState) -> dict[str, Any]:
    """Group members by email, folder roles by principal name and folder path, API keys by name."""
    users = {u["id"]: u.get("email") or u["id"] for u in state.users.values()}
    groups = {g["id"]: g.get("name") or g["id"] for g in state.groups.values()}
    keys = {k["api_key"]: k.get("name") or k["api_key"] for env in state.access_keys.values() for k in env}
    paths = {f["external_id"]: f.get("path") or f["external_id"] for f in state.folders.values()}
    names = {"user": users, "group": groups, "apiKey": keys}
    grants: dict[str, dict[str, list[str]]] = {}
    for a in state.role_assignments:
        parameters = a.get("policy_parameters") or {}
        where = (
            paths.get(parameters["folder_id"], parameters["folder_id"])
            if parameters.get("folder_id")
            else f"collection {parameters['collection_id']}"
            if parameters.get("collection_id")
            else "global"
        )
        kind, principal = a["principal_type"], a["principal_id"]
        who = f"{kind} {names.get(kind, {}).get(principal, principal)}"
        grants.setdefault(who, {}).setdefault(where, []).append(str(a["role_id"]).rsplit("::", 1)[-1])
    return {
        "users": {
            users[u["id"]]: {"id": u["id"], "role": u.get("role"), "enabled": u.get("enabled")}
            for u in state.users.values()
        },
        "groups": {
            groups[g]: {"id": g, "members": sorted(users.get(m, m) for m in state.members.get(g, []))} for g in groups
        },
        "folders": {path: folder_id for folder_id, path in paths.items()},
        "api_keys": {name: {"api_key": key} for key, name in keys.items()},
        "grants": grants,
    }
