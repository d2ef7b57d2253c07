"""Cloudinary Permissions API custom policies (`/v2/accounts/{id}/permissions/policies/custom`), for
the Cloudinary emulator: permissions.yml v2.0.0 (CustomPolicy, CreateCustomPolicy, UpdateCustomPolicy)
and research/cloudinary.md §3.3, §4.1.

A custom policy is a Cedar statement that names its own principal, action and resource
(`permit(principal in Cloudinary::Group::"…", action == Cloudinary::Action::"moderate", resource is
Cloudinary::Asset) when { resource.ancestor_ids.contains("<folder_id>") };`), held per scope. Where
the public facts stop, and what is assumed here:
* the emulator does not evaluate Cedar: a statement is kept as text, checked only for the
  `permit(`/`forbid(` … `;` form (the real service validates it; `POST /public/validate` exists);
* whether a folder-scoped `moderate` permit is honoured by the moderation queue, and whether
  `principal in Cloudinary::Group::"…"` is accepted (the spec's examples name API keys and users),
  is not documented (research §4.1: UNCONFIRMED);
* ids are 24 lower-case alphanumerics like the spec's example; the list is one page.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .cloudinary_media import _epoch, _invalid, _json, _missing, _not_found, _v2

if TYPE_CHECKING:
    from .cloudinary import CloudinaryState

_STATEMENT = re.compile(r"\s*(permit|forbid)\s*\(.*\)\s*(when\s*\{.*\}\s*)?;\s*", re.DOTALL)
_ALPHABET = string.ascii_lowercase + string.digits


def handlers(state: CloudinaryState) -> dict[str, Any]:
    """list, create, one, update, remove: the route handlers (wrapped by cloudinary_media's endpoint)."""

    def checked(body: dict[str, Any], update: bool) -> dict[str, Any]:
        missing = [f for f in ("name", "policy_statement", "scope_type") if not body.get(f)]
        if update and not isinstance(body.get("enabled"), bool):
            missing.append("enabled")
        if missing:
            raise _missing(*missing)
        if body["scope_type"] not in ("account", "prodenv"):
            raise _invalid("scope_type", body["scope_type"])
        if body["scope_type"] == "prodenv" and body.get("scope_id") not in (*state.environments, "all"):
            raise _not_found("scope_id", body.get("scope_id"))
        if not isinstance(body["policy_statement"], str) or not _STATEMENT.fullmatch(body["policy_statement"]):
            raise _v2(400, "ACCOUNTS_00005", "invalid policy statement", {"fields": ["policy_statement"]})
        return body

    def found(policy_id: str) -> dict[str, Any]:
        policy = state.custom_policies.get(policy_id)
        if policy is None:
            raise _not_found("policy_id", policy_id)
        return policy

    async def list_policies(request: Request) -> JSONResponse:
        q = request.query_params
        data = [
            p
            for p in state.custom_policies.values()
            if (not q.get("scope_type") or p["scope_type"] == q["scope_type"])
            and (not q.get("scope_id") or p["scope_id"] == q["scope_id"])
            and (q.get("enabled") is None or str(p["enabled"]).lower() == q["enabled"].lower())
        ]
        return JSONResponse({"data": data})  # one page: no next_cursor (a string in the spec, never null)

    async def create(request: Request) -> JSONResponse:
        body = checked(await _json(request, _missing("name")), update=False)
        now = _epoch()
        policy_id = "".join(secrets.choice(_ALPHABET) for _ in range(24))
        state.custom_policies[policy_id] = {
            "id": policy_id,
            "name": body["name"],
            "description": body.get("description"),
            "policy_statement": body["policy_statement"],
            "scope_type": body["scope_type"],
            "scope_id": body.get("scope_id") if body["scope_type"] == "prodenv" else None,
            "enabled": body.get("enabled", True) is not False,
            "created_at": now,
            "updated_at": now,
        }
        return JSONResponse({"data": state.custom_policies[policy_id]}, status_code=201)

    async def one(request: Request) -> JSONResponse:
        return JSONResponse({"data": found(request.path_params["policy_id"])})

    async def update(request: Request) -> JSONResponse:
        policy = found(request.path_params["policy_id"])
        body = checked(await _json(request, _missing("name")), update=True)
        policy.update({k: body[k] for k in ("name", "policy_statement", "scope_type", "enabled")})
        policy.update(description=body.get("description"), scope_id=body.get("scope_id"), updated_at=_epoch())
        return JSONResponse({"data": policy})

    async def remove(request: Request) -> Response:
        found(request.path_params["policy_id"])
        del state.custom_policies[request.path_params["policy_id"]]
        return Response(status_code=204)

    return {"list": list_policies, "create": create, "one": one, "update": update, "remove": remove}


__all__ = ["handlers"]
