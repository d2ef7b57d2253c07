"""iconik review & approve (`/API/assets/v1/{object_type}/{object_id}/approvals/…`).

From ../shared/specs/iconik/assets.json and research/iconik.md §6 and §9.10: a request names
reviewers (users, groups, external emails) and `min_number`; reviewers vote APPROVED or
NOT_APPROVED; the request's status follows the votes. One record per object in
`state.approvals["<object_type>/<object_id>"]` = {"request": ApprovalSchema fields, "votes": {…}}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .iconik_acls import object_exists
from .iconik_common import Refusal, json_body, new_id, now, paged

if TYPE_CHECKING:
    from .iconik import IconikState, IconikSwitches

PREFIX = "/API/assets/v1"
OBJECT_TYPES = ("assets", "collections", "saved_searches")  # BulkSetApprovalSchema.object_type
VOTES = ("APPROVED", "NOT_APPROVED")


def overall(request: dict[str, Any], votes: dict[str, dict[str, Any]]) -> str:
    """The request's status from its votes. UNCONFIRMED rule (the help centre names the states only):
    approvals and rejections together → MIXED; only rejections → NOT_APPROVED; at least `min_number`
    approvals → APPROVED; otherwise still REQUESTED."""
    approved = sum(v["status"] == "APPROVED" for v in votes.values())
    rejected = sum(v["status"] == "NOT_APPROVED" for v in votes.values())
    if approved and rejected:
        return "MIXED"
    if rejected:
        return "NOT_APPROVED"
    return "APPROVED" if approved >= request.get("min_number", 1) else "REQUESTED"


def routes(state: IconikState, switches: IconikSwitches) -> list[Route]:
    base = f"{PREFIX}/{{object_type}}/{{object_id}}/approvals/"

    def target(request: Request) -> tuple[str, str]:
        object_type, object_id = request.path_params["object_type"], request.path_params["object_id"]
        if object_type not in OBJECT_TYPES:
            raise Refusal(["Not found"], 404)
        if not object_exists(state, object_type, object_id):
            raise Refusal(["Object does not exist"], 404)
        return object_type, object_id

    def current(request: Request) -> dict[str, Any]:
        object_type, object_id = target(request)
        held = state.approvals.get(f"{object_type}/{object_id}")
        if held is None:  # "a request must exist before statuses can be set" (research §6)
            raise Refusal(["Approval request does not exist"], 404)
        return held

    def reviewers(held: dict[str, Any]) -> set[str]:
        req = held["request"]
        if switches.approval_groups_resolved_at == "request":
            return set(req["users"]) | set(held["group_members_at_request"])
        # Default: a group's members are looked up when they vote — whether iconik does this or
        # freezes membership at request time is UNCONFIRMED (research §6), hence the switch.
        return set(req["users"]) | {u["id"] for u in state.users.values() if set(u["groups"]) & set(req["groups"])}

    def view(held: dict[str, Any]) -> dict[str, Any]:
        """ApprovalSchema; user_status is the calling (token) user's own vote."""
        req, votes = held["request"], held["votes"]
        mine = votes.get(state.token_user_id, {}).get("status")
        user_status = mine or ("REQUESTED" if state.token_user_id in reviewers(held) else "N/A")
        users_info = [
            {
                k: state.users[u][k]
                for k in ("id", "email", "first_name", "last_name")
                if state.users[u].get(k) is not None
            }
            for u in req["users"]
            if u in state.users
        ]
        return {
            **req,
            "status": overall(req, votes),
            "user_status": user_status,
            "users_info": users_info,
            "approvals_by": list(votes.values()),
        }

    def checked(body: dict[str, Any]) -> dict[str, Any]:
        problems: dict[str, list[str]] = {}
        for name, table in (("users", state.users), ("groups", state.groups)):
            unknown = [i for i in body.get(name) or [] if i not in table]
            if unknown:
                problems[name] = [f"{i} does not exist" for i in unknown]
        min_number = body.get("min_number", 1)
        if not isinstance(min_number, int) or min_number < 1:
            problems["min_number"] = ["Must be greater than or equal to 1."]
        if problems:
            raise Refusal(problems, 400)
        return {
            "users": list(body.get("users") or []),
            "groups": list(body.get("groups") or []),
            "externals": list(body.get("externals") or []),
            "min_number": min_number,
            "share_id": body.get("share_id"),
        }

    async def request_approval(request: Request) -> JSONResponse:
        object_type, object_id = target(request)
        fields = checked(await json_body(request))
        stamp = now()
        # A new request replaces an earlier one and its votes: UNCONFIRMED.
        held = {
            "request": {
                **fields,
                "object_type": object_type,
                "object_id": object_id,
                "requested_by": state.token_user_id,
                "request_date": stamp,
                "change_date": stamp,
            },
            "votes": {},
            "group_members_at_request": [
                u["id"] for u in state.users.values() if set(u["groups"]) & set(fields["groups"])
            ],
        }
        state.approvals[f"{object_type}/{object_id}"] = held
        if switches.approval_request_async:  # the spec's other answer: 202 with a background job id
            return JSONResponse({"job_id": new_id()}, status_code=202)
        return JSONResponse(view(held), status_code=201)

    async def read_request(request: Request) -> JSONResponse:
        return JSONResponse(view(current(request)))

    async def edit_request(request: Request) -> JSONResponse:
        held = current(request)
        body = await json_body(request)
        if request.method == "PATCH":
            body = {
                **{k: held["request"][k] for k in ("users", "groups", "externals", "min_number", "share_id")},
                **body,
            }
        held["request"].update(checked(body), change_date=now())
        return JSONResponse(view(held))

    async def withdraw_request(request: Request) -> JSONResponse:
        held = current(request)
        answer = view(held)
        del state.approvals[f"{held['request']['object_type']}/{held['request']['object_id']}"]
        return JSONResponse(answer)

    async def list_votes(request: Request) -> JSONResponse:
        return JSONResponse(paged(request, list(current(request)["votes"].values()), switches))

    async def vote(request: Request) -> JSONResponse:
        held = current(request)
        body = await json_body(request)
        if body.get("status") not in VOTES:
            raise Refusal({"status": [f"Must be one of: {', '.join(VOTES)}."]}, 400)
        # The vote is the calling user's. ApprovalBySchema leaves `user` writable, so a test (one token)
        # can vote as a named reviewer; whether iconik honours that for an admin token is UNCONFIRMED.
        voter = body.get("user") or state.token_user_id
        if voter not in reviewers(held):
            raise Refusal({"user": ["User is not a reviewer of this object"]}, 400)  # code UNCONFIRMED
        entry = {
            "user": voter,
            "status": body["status"],
            "change_date": now(),
            "object_type": held["request"]["object_type"],
            "object_id": held["request"]["object_id"],
        }
        held["votes"][voter] = entry
        held["request"]["change_date"] = entry["change_date"]
        return JSONResponse(entry)

    async def remove_my_vote(request: Request) -> Response:
        current(request)["votes"].pop(state.token_user_id, None)
        return Response(status_code=204)

    async def remove_user_vote(request: Request) -> Response:
        votes = current(request)["votes"]
        if votes.pop(request.path_params["user_id"], None) is None:
            raise Refusal(["Approval status does not exist"], 404)
        return Response(status_code=204)

    return [
        Route(base, list_votes, methods=["GET"]),
        Route(base, vote, methods=["PUT"]),
        Route(base, remove_my_vote, methods=["DELETE"]),
        Route(base + "request/", request_approval, methods=["POST"]),
        Route(base + "request/", read_request, methods=["GET"]),
        Route(base + "request/", edit_request, methods=["PATCH", "PUT"]),
        Route(base + "request/", withdraw_request, methods=["DELETE"]),
        Route(base + "user/{user_id}/", remove_user_vote, methods=["DELETE"]),
    ]
