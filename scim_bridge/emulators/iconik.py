"""iconik Users service emulator: users, groups and membership (`/API/users/v1/`).

Built from iconik's own OpenAPI document (../shared/specs/iconik/users.json, May 2025) and the
behaviour in research/iconik.md §1–§3 and §9: `App-ID` + `Auth-Token` headers bound to a user
(tokens stop working when that user is no longer ACTIVE); trailing-slash paths; 201 on create,
204 on delete, 201 with the UserSchema on member add and 200 with it on member remove; the
page/per_page envelope with host-relative `next_url`; `{"errors": [...]}` and
`{"errors": {field: [...]}}` bodies; a token bucket (≈50 requests/s, 1000 per 20 s, numbers
from a secondary source, so configurable) answering 429 with `RateLimit-Remaining`.
The other services sit behind the same guard, each in its own module: roles (iconik_roles), ACLs
(iconik_acls), collections and projects (iconik_assets), assets and collection contents
(iconik_contents), approvals (iconik_approvals), webhooks
(iconik_webhooks). Shares no code with the bridge (DESIGN.md).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import iconik_acls, iconik_approvals, iconik_assets, iconik_contents, iconik_roles, iconik_webhooks
from .email_index import EmailIndex
from .faults import FaultInjector, Faults, fault_routes_handler
from .iconik_common import Refusal, find, json_body, now, paged
from .ratelimit import TokenBucket

USER_TYPES = ("POWER", "STANDARD", "BROWSE_ONLY", "BROWSE_API_ONLY")
STATUSES = ("INACTIVE", "ACTIVE", "BLOCKED", "DELETED")
PREFIX = "/API/users/v1"


@dataclass
class IconikSwitches:
    rate_per_second: float = 0.0  # 0 = unlimited; research/iconik.md §1.5 says ≈50 (UNCONFIRMED)
    burst: float = 1000.0  # "1000 requests over any 20-second window"
    per_page_over_max: str = "reject"  # or "clamp": what the real server does past 100 is UNCONFIRMED
    page_past_end_404: bool = True  # [SPEC] lists 404 "Requested page does not exist"
    # Behaviour the public material leaves open (each marked UNCONFIRMED where it is used):
    acl_overwrite_scope: str = "object"  # bulk OVERWRITE replaces the object's whole ACL, or "principal"
    acl_content_propagates: bool = False  # PUT /acl/collections/content/ as a propagating ACL, not one-shot
    project_members_get_collection_acl: bool = False  # members may read/write the project collection
    collection_delete_purges: bool = False  # DELETE removes outright instead of status DELETED
    approval_groups_resolved_at: str = "vote"  # or "request": when a reviewer group's members are taken
    approval_request_async: bool = False  # answer approval requests 202 {"job_id"} instead of 201
    webhooks_deliver: bool = True  # POST events to matching webhooks
    webhook_get_status: int = 201  # the spec documents 201 for GET /webhooks/{id}/
    webhook_timeout_seconds: float = 5.0
    webhook_failures_before_failing: int = 3


@dataclass
class IconikState:
    app_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    auth_token: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    system_domain_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_user_id: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    acls: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<object_type>/<object_key>" → entries
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    project_members: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # project → user → member
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<object_type>/<object_id>" → request, votes
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)  # collection → held
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.token_user_id:  # the admin user the application token runs as
            admin = _new_user(
                {
                    "email": "bridge-service@example.com",
                    "first_name": "Bridge",
                    "last_name": "Service",
                    "type": "POWER",
                    "is_admin": True,
                },
                self.system_domain_id,
            )
            self.users[admin["id"]] = admin
            self.token_user_id = admin["id"]


def _new_user(body: dict[str, Any], system_domain_id: str) -> dict[str, Any]:
    stamp = now()
    return {
        "id": str(uuid.uuid4()),
        "email": body.get("email"),
        "first_name": body.get("first_name"),
        "last_name": body.get("last_name", ""),
        "type": body.get("type"),
        "status": body.get("status", "ACTIVE"),
        "is_admin": bool(body.get("is_admin", False)),
        "groups": list(body.get("groups") or []),
        "primary_group": body.get("primary_group"),
        "system_domain_id": system_domain_id,
        "system_domains": [system_domain_id],
        "date_created": stamp,
        "date_modified": stamp,
        "metadata": None,
    }


def _user_view(user: dict[str, Any]) -> dict[str, Any]:
    # The spec types these as strings without `nullable`: unset ones are left out, not null.
    return {k: v for k, v in user.items() if v is not None or k == "metadata"}


def build(
    state: IconikState | None = None, switches: IconikSwitches | None = None, faults: Faults | None = None
) -> Any:
    """The emulator as an ASGI app: /API/users/v1/ (users, groups, roles), /API/acls/v1/,
    /API/assets/v1/ (collections, projects, assets, contents, approvals) and /API/notifications/v1/ (webhooks)."""
    state = state or IconikState()
    switches = switches or IconikSwitches()
    faults = faults or Faults()
    bucket = TokenBucket(switches.rate_per_second, switches.burst)

    def check_user_fields(body: dict[str, Any], creating: bool) -> None:
        problems: dict[str, list[str]] = {}
        required = ("email", "first_name", "type") if creating else ()
        for name in required:
            if not body.get(name):
                problems[name] = ["Missing data for required field."]
        if body.get("type") is not None and body["type"] not in USER_TYPES:
            problems["type"] = [f"Must be one of: {', '.join(USER_TYPES)}."]
        if body.get("status") is not None and body["status"] not in STATUSES:
            problems["status"] = [f"Must be one of: {', '.join(STATUSES)}."]
        for group_id in body.get("groups") or []:
            if group_id not in state.groups:
                problems.setdefault("groups", []).append(f"Group {group_id} does not exist")
        if problems:
            raise Refusal(problems, 400)

    # users -------------------------------------------------------------------------------------
    emails = EmailIndex(state.users, counts=lambda u: u["status"] != "DELETED")

    async def list_users(request: Request) -> JSONResponse:
        users = [u for u in state.users.values() if u["status"] != "DELETED"]
        q = request.query_params
        if q.get("email"):
            users = [u for u in users if (u["email"] or "").lower() == q["email"].lower()]
        if q.get("emails"):
            wanted = {e.lower() for e in q["emails"].split(",")}
            users = [u for u in users if (u["email"] or "").lower() in wanted]
        if q.get("status"):
            users = [u for u in users if u["status"] == q["status"]]
        if q.get("groups"):
            wanted_groups = set(q["groups"].split(","))
            users = [u for u in users if wanted_groups & set(u["groups"])]
        if q.get("ids"):
            wanted_ids = set(q["ids"].split(","))
            users = [u for u in users if u["id"] in wanted_ids]
        envelope = paged(request, users, switches)  # views of one page, not of every user
        envelope["objects"] = [_user_view(u) for u in envelope["objects"]]
        return JSONResponse(envelope)

    async def create_user(request: Request) -> JSONResponse:
        body = await json_body(request)
        check_user_fields(body, creating=True)
        # research/iconik.md §2.1: what a duplicate email gets is UNCONFIRMED; the spec lists 400.
        if emails.find(str(body["email"])) is not None:
            raise Refusal({"email": ["User with this email already exists"]}, 400)
        user = _new_user(body, state.system_domain_id)
        state.users[user["id"]] = user
        emails.added(user)
        return JSONResponse(_user_view(user), status_code=201)

    async def get_user(request: Request) -> JSONResponse:
        return JSONResponse(_user_view(find("User", state.users, request.path_params["user_id"])))

    async def current_user(request: Request) -> JSONResponse:
        """The user the token runs as ([SPEC] GET /v1/users/current/, research/iconik.md §2.1)."""
        return JSONResponse(_user_view(state.users[state.token_user_id]))

    async def update_user(request: Request) -> JSONResponse:
        user = find("User", state.users, request.path_params["user_id"])
        body = await json_body(request)
        check_user_fields(body, creating=False)
        if request.method == "PUT" and (not body.get("first_name") or not body.get("type")):
            raise Refusal({"first_name": ["Missing data for required field."]}, 400)
        holds_email = (user["email"], user["status"] == "DELETED")
        for name in (
            "email",
            "first_name",
            "last_name",
            "type",
            "status",
            "is_admin",
            "groups",
            "primary_group",
            "phone",
            "description",
            "metadata",
        ):
            if name in body:
                user[name] = body[name]
        if (user["email"], user["status"] == "DELETED") != holds_email:
            emails.changed()
        user["date_modified"] = now()
        return JSONResponse(_user_view(user))

    async def delete_user(request: Request) -> Response:
        user = find("User", state.users, request.path_params["user_id"])
        del state.users[user["id"]]
        return Response(status_code=204)

    # groups ------------------------------------------------------------------------------------
    async def list_groups(request: Request) -> JSONResponse:
        groups = list(state.groups.values())
        if request.query_params.get("name"):
            groups = [g for g in groups if g["name"] == request.query_params["name"]]
        if request.query_params.get("ids"):
            wanted = set(request.query_params["ids"].split(","))
            groups = [g for g in groups if g["id"] in wanted]
        if request.query_params.get("roles"):
            groups = iconik_roles.groups_with_roles(groups, request.query_params["roles"])
        return JSONResponse(paged(request, groups, switches))

    async def create_group(request: Request) -> JSONResponse:
        body = await json_body(request)
        if not body.get("name"):
            raise Refusal({"name": ["Missing data for required field."]}, 400)
        roles = iconik_roles.group_role_fields(body)
        stamp = now()
        group = {
            "id": str(uuid.uuid4()),
            "name": body["name"],
            "description": body.get("description", ""),
            "external_id": body.get("external_id"),
            "roles": list(body.get("roles") or []),
            "role_categories": None,
            "is_saml_group": False,
            "date_created": stamp,
            "date_modified": stamp,
            **roles,
        }
        state.groups[group["id"]] = group
        return JSONResponse(group, status_code=201)

    async def get_group(request: Request) -> JSONResponse:
        return JSONResponse(find("Group", state.groups, request.path_params["group_id"]))

    async def update_group(request: Request) -> JSONResponse:
        group = find("Group", state.groups, request.path_params["group_id"])
        body = await json_body(request)
        roles = iconik_roles.group_role_fields(body)
        for name in ("name", "description", "external_id", "alias"):
            if name in body:
                group[name] = body[name]
        group.update(roles)
        group["date_modified"] = now()
        return JSONResponse(group)

    async def delete_group(request: Request) -> Response:
        group = find("Group", state.groups, request.path_params["group_id"])
        del state.groups[group["id"]]
        for user in state.users.values():
            if group["id"] in user["groups"]:
                user["groups"].remove(group["id"])
            if user.get("primary_group") == group["id"]:
                user["primary_group"] = None
        return Response(status_code=204)

    async def add_member(request: Request) -> JSONResponse:
        group = find("Group", state.groups, request.path_params["group_id"])
        user = find("User", state.users, request.path_params["user_id"])
        if group["id"] not in user["groups"]:
            user["groups"].append(group["id"])
        return JSONResponse(_user_view(user), status_code=201)

    async def remove_member(request: Request) -> JSONResponse:
        group = find("Group", state.groups, request.path_params["group_id"])
        user = find("User", state.users, request.path_params["user_id"])
        if group["id"] in user["groups"]:
            user["groups"].remove(group["id"])
        return JSONResponse(_user_view(user))

    async def snapshot(request: Request) -> JSONResponse:
        # ?names=true adds "by_name": the same state with names beside ids (emulator control only;
        # no iconik API shape changes).
        extra = {"by_name": _by_name(state)} if request.query_params.get("names") in ("1", "true", "yes") else {}
        return JSONResponse(
            {
                **extra,
                "app_id": state.app_id,
                "token_user_id": state.token_user_id,
                "users": list(state.users.values()),
                "groups": list(state.groups.values()),
                "roles": {
                    "groups": {g["id"]: g["roles"] for g in state.groups.values()},
                    "users": {u["id"]: iconik_roles.user_roles(state, u) for u in state.users.values()},
                },
                "acls": state.acls,
                "collections": list(state.collections.values()),
                "projects": list(state.projects.values()),
                "members": state.project_members,
                "approvals": state.approvals,
                "assets": list(state.assets.values()),
                "contents": {c: list(held.values()) for c, held in state.contents.items()},
                "webhooks": list(state.webhooks.values()),
                "calls": len(state.calls),
            }
        )

    notifier = iconik_webhooks.Notifier(state, switches)

    routes = [
        Route(f"{PREFIX}/users/", list_users, methods=["GET"]),
        Route(f"{PREFIX}/users/", create_user, methods=["POST"]),
        Route(f"{PREFIX}/users/current/", current_user, methods=["GET"]),  # before {user_id} matches it
        Route(f"{PREFIX}/users/{{user_id}}/", get_user, methods=["GET"]),
        Route(f"{PREFIX}/users/{{user_id}}/", update_user, methods=["PATCH", "PUT"]),
        Route(f"{PREFIX}/users/{{user_id}}/", delete_user, methods=["DELETE"]),
        Route(f"{PREFIX}/groups/", list_groups, methods=["GET"]),
        Route(f"{PREFIX}/groups/", create_group, methods=["POST"]),
        Route(f"{PREFIX}/groups/{{group_id}}/", get_group, methods=["GET"]),
        Route(f"{PREFIX}/groups/{{group_id}}/", update_group, methods=["PATCH", "PUT"]),
        Route(f"{PREFIX}/groups/{{group_id}}/", delete_group, methods=["DELETE"]),
        Route(f"{PREFIX}/groups/{{group_id}}/users/{{user_id}}/", add_member, methods=["POST"]),
        Route(f"{PREFIX}/groups/{{group_id}}/users/{{user_id}}/", remove_member, methods=["DELETE"]),
        *iconik_roles.routes(state),
        *iconik_acls.routes(state, switches, notifier.emit),
        *iconik_assets.routes(state, switches, notifier.emit),
        *iconik_contents.routes(state, switches, notifier.emit),
        *iconik_approvals.routes(state, switches),
        *iconik_webhooks.routes(state, switches),
        Route("/_emulator/state", snapshot, methods=["GET"]),
        Route("/_emulator/faults", fault_routes_handler(faults), methods=["GET", "PUT"]),
    ]

    async def refusal(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refusal)
        return JSONResponse({"errors": exc.errors}, status_code=exc.status)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"errors": ["Not found"]}, status_code=404)

    app = Starlette(routes=routes, exception_handlers={Refusal: refusal, 404: not_found, 405: not_found})
    app.router.redirect_slashes = False  # the real paths all end with "/"; others are 404s

    async def throttled(scope: Scope, receive: Receive, send: Send, retry_after: int) -> None:
        await JSONResponse(
            {"errors": ["Too many requests"]},
            status_code=429,
            headers={"RateLimit-Remaining": "0", "Retry-After": str(retry_after)},
        )(scope, receive, send)

    guarded = _Guard(
        FaultInjector(
            app,
            faults,
            throttled,
            lambda status: {"errors": ["Internal server error"]},
            lambda path: {"errors": ["Token is invalid"]},  # the guard's own answer to a bad token
        ),
        state,
        bucket,
        throttled,
    )
    return guarded


class _Guard:
    """App-ID/Auth-Token check, the token bucket and its header, and the call log."""

    def __init__(self, app: Any, state: IconikState, bucket: TokenBucket, throttled: Any) -> None:
        self.app, self.state, self.bucket, self.throttled = app, state, bucket, throttled
        self.emulator = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token_user = self.state.users.get(self.state.token_user_id)
        if (
            headers.get("app-id") != self.state.app_id
            or headers.get("auth-token") != self.state.auth_token
            or token_user is None
            or token_user["status"] != "ACTIVE"
        ):
            # research/iconik.md §1.1: a token stops working when its user is deactivated.
            await JSONResponse({"errors": ["Token is invalid"]}, status_code=401)(scope, receive, send)
            return
        allowed, remaining, wait = self.bucket.take()
        if not allowed:
            await self.throttled(scope, receive, send, retry_after=max(1, math.ceil(wait)))
            return
        self.state.calls.append({"method": scope["method"], "path": scope["path"]})

        async def with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"ratelimit-remaining", str(remaining).encode())],
                }
            await send(message)

        await self.app(scope, receive, with_header)


def _by_name(state: IconikState) -> dict[str, Any]:
    """Who is in which group, who may do what on which collection, who is on which project: by
    email, group name, collection title and project name (unknown ids stay ids)."""
    users = {u["id"]: u.get("email") or u["id"] for u in state.users.values()}
    groups = {g["id"]: g.get("name") or g["id"] for g in state.groups.values()}
    titles = {c["id"]: c.get("title") or c["id"] for c in state.collections.values()}
    acls: dict[str, Any] = {}
    for entry in state.acls.values():
        name = entry["object_key"]
        if entry["object_type"] == "collections":
            name = titles.get(name, name)
        acls[f"{entry['object_type']}/{name}"] = {
            "groups": {groups.get(g, g): sorted(e.get("permissions") or []) for g, e in entry["groups"].items()},
            "users": {users.get(u, u): sorted(e.get("permissions") or []) for u, e in entry["users"].items()},
        }
    return {
        "users": {
            users[u["id"]]: {
                "id": u["id"],
                "type": u.get("type"),
                "status": u.get("status"),
                "groups": sorted(groups.get(g, g) for g in u.get("groups") or []),
            }
            for u in state.users.values()
        },
        "groups": {name: group_id for group_id, name in groups.items()},
        "collections": {title: collection_id for collection_id, title in titles.items()},
        "acls": acls,
        "projects": {
            p.get("name") or p["id"]: {
                "id": p["id"],
                "members": sorted(users.get(m, m) for m in state.project_members.get(p["id"], {})),
            }
            for p in state.projects.values()
        },
    }
