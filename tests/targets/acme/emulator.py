"""A tiny emulator of "Acme DAM", a made-up third target: users with a role, groups, members.
It exists to show that a target the bridge has never heard of plugs in through the registry alone
(tests/targets/test_third_target.py); it is as small as a faithful emulator of such an API can be:
bearer-token auth, 404 on unknown ids, 409 on a taken email or group name."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "acme-token"


@dataclass
class AcmeState:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → {id, name, members: set}
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["email"].lower() == email.lower()), None)

    def groups_of(self, email: str) -> set[str]:
        user = self.user_by_email(email)
        return {g["name"] for g in self.groups.values() if user and user["id"] in g["members"]}


def build(state: AcmeState | None = None, switches: Any = None, faults: Any = None) -> Starlette:
    state = state or AcmeState()

    def authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def user_json(user: dict[str, Any]) -> dict[str, Any]:
        groups = sorted(g["id"] for g in state.groups.values() if user["id"] in g["members"])
        return {**user, "groups": groups}

    async def users(request: Request) -> Response:
        if not authorised(request):
            return error(401, "bad token")
        if request.method == "GET":
            email = request.query_params.get("email")
            found = [u for u in state.users.values() if email is None or u["email"].lower() == email.lower()]
            return JSONResponse([user_json(u) for u in found])
        body = await request.json()
        if state.user_by_email(body["email"]):
            return error(409, "email taken")
        user = {"id": f"u{next(state.ids)}", "enabled": True, **body}
        state.users[user["id"]] = user
        return JSONResponse(user_json(user), status_code=201)

    async def one_user(request: Request) -> Response:
        if not authorised(request):
            return error(401, "bad token")
        user = state.users.get(request.path_params["id"])
        if user is None:
            return error(404, "no such user")
        if request.method == "DELETE":
            del state.users[user["id"]]
            for group in state.groups.values():
                group["members"].discard(user["id"])
            return Response(status_code=204)
        user.update({k: v for k, v in (await request.json()).items() if k != "id"})
        return JSONResponse(user_json(user))

    async def groups(request: Request) -> Response:
        if not authorised(request):
            return error(401, "bad token")
        if request.method == "GET":
            name = request.query_params.get("name")
            found = [g for g in state.groups.values() if name is None or g["name"] == name]
            return JSONResponse([{"id": g["id"], "name": g["name"]} for g in found])
        body = await request.json()
        if any(g["name"] == body["name"] for g in state.groups.values()):
            return error(409, "name taken")
        group = {"id": f"g{next(state.ids)}", "name": body["name"], "members": set()}
        state.groups[group["id"]] = group
        return JSONResponse({"id": group["id"], "name": group["name"]}, status_code=201)

    async def one_group(request: Request) -> Response:
        if not authorised(request):
            return error(401, "bad token")
        group = state.groups.get(request.path_params["id"])
        if group is None:
            return error(404, "no such group")
        if request.method == "DELETE":
            del state.groups[group["id"]]
            return Response(status_code=204)
        group["name"] = (await request.json())["name"]
        return JSONResponse({"id": group["id"], "name": group["name"]})

    async def members(request: Request) -> Response:
        if not authorised(request):
            return error(401, "bad token")
        group = state.groups.get(request.path_params["id"])
        if group is None:
            return error(404, "no such group")
        return JSONResponse(sorted(group["members"]))

    async def member(request: Request) -> Response:
        if not authorised(request):
            return error(401, "bad token")
        group = state.groups.get(request.path_params["id"])
        if group is None or request.path_params["user"] not in state.users:
            return error(404, "no such group or user")
        if request.method == "PUT":
            group["members"].add(request.path_params["user"])
        else:
            group["members"].discard(request.path_params["user"])
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/users", users, methods=["GET", "POST"]),
            Route("/users/{id}", one_user, methods=["PUT", "DELETE"]),
            Route("/groups", groups, methods=["GET", "POST"]),
            Route("/groups/{id}", one_group, methods=["PUT", "DELETE"]),
            Route("/groups/{id}/members", members, methods=["GET"]),
            Route("/groups/{id}/members/{user}", member, methods=["PUT", "DELETE"]),
        ]
    )
