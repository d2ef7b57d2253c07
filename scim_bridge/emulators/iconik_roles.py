"""iconik roles (functional permissions): strings on groups, a user's roles = union over their groups.

From ../shared/specs/iconik/users.json (GroupSchema.roles / role_categories, the groups `roles` filter,
`/users/{id}/roles/`, `/users/{id}/roles/{role}/`, `/users/current/roles/`) and research/iconik.md §3.1.
Role strings are not checked against a catalogue: the `can_*` names in the spec's "Required roles"
notes are very likely the stored values, but the catalogue itself is UNCONFIRMED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .iconik_common import Refusal, find

if TYPE_CHECKING:
    from .iconik import IconikState

PREFIX = "/API/users/v1"
ROLE_CATEGORIES = (
    "assets_edit",
    "billing",
    "collaborate",
    "core",
    "download",
    "integrations_admin",
    "metadata_admin",
    "organize",
    "others",
    "storage_admin",
    "upload",
    "users_groups_admin",
)


def group_role_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The role-related fields of a group create/update body, checked against GroupSchema."""
    fields: dict[str, Any] = {}
    if "roles" in body:
        roles = body["roles"]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Refusal({"roles": ["Must be a list of strings."]}, 400)
        fields["roles"] = list(dict.fromkeys(roles))
    if "role_categories" in body:
        categories = body["role_categories"]
        if categories is not None and not (
            isinstance(categories, dict)
            and all(k in ROLE_CATEGORIES and isinstance(v, bool) for k, v in categories.items())
        ):
            raise Refusal(
                {"role_categories": [f"Keys must be among {', '.join(ROLE_CATEGORIES)}, values booleans."]}, 400
            )
        fields["role_categories"] = categories
    return fields


def groups_with_roles(groups: list[dict[str, Any]], wanted: str) -> list[dict[str, Any]]:
    """The groups `roles=` filter; a comma list matches a group holding any of them (format UNCONFIRMED)."""
    names = set(wanted.split(","))
    return [g for g in groups if names & set(g.get("roles") or [])]


def user_roles(state: IconikState, user: dict[str, Any]) -> list[str]:
    # Only group roles: whether an admin's list shows every role, and which defaults each user type
    # adds (research §3.1 "different user types get different roles by default"), is UNCONFIRMED.
    roles: dict[str, None] = {}
    for group_id in user["groups"]:
        for role in state.groups.get(group_id, {}).get("roles") or []:
            roles[role] = None
    return list(roles)


def routes(state: IconikState) -> list[Route]:
    def user_of(request: Request) -> dict[str, Any]:
        user_id = request.path_params.get("user_id", state.token_user_id)
        return find("User", state.users, user_id)

    async def list_roles(request: Request) -> JSONResponse:
        return JSONResponse({"objects": user_roles(state, user_of(request))})  # UserRolesSchema, unpaginated

    async def has_role(request: Request) -> JSONResponse:
        if request.path_params["role"] in user_roles(state, user_of(request)):
            return JSONResponse({})
        raise Refusal(["User doesn't have role"], 404)  # the spec's documented way of saying no

    return [
        Route(f"{PREFIX}/users/current/roles/", list_roles, methods=["GET"]),
        Route(f"{PREFIX}/users/{{user_id}}/roles/", list_roles, methods=["GET"]),
        Route(f"{PREFIX}/users/{{user_id}}/roles/{{role}}/", has_role, methods=["GET"]),
    ]
