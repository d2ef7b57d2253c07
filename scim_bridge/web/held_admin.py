"""Held changes of the deprovision brake in the admin API (sync/brake.py).

    GET  /admin/api/held               the brake per target and every held change (?target=)
    POST /admin/api/held/approve       {"ids": ["User/…", …]} or {"all": true}, optional "target"
    POST /admin/api/held/reject        the same shape: access stays, nothing is sent
    POST /admin/api/held/release       {"target": …}: disengage a brake that holds nothing

A decision names who took it (the admin credential) in the audit trail. Deciding on something that
is not held (approved twice, approved after a reject, an unknown id) is a 409 and changes nothing.
Without a sync policy the endpoints answer 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..sync.brake import Brake, DecisionError


def _brake(request: Request) -> Brake | None:
    sync = request.app.state.sync
    return sync.engine.brake if sync is not None else None


def _decider(request: Request) -> str:
    principal = request.scope.get("state", {}).get("principal")
    name = getattr(principal, "name", None)
    return f"admin:{name}" if name else "admin"


def _no_sync() -> JSONResponse:
    return JSONResponse({"error": "no sync policy is running: nothing can be held"}, 404)


async def held(request: Request) -> JSONResponse:
    brake = _brake(request)
    if brake is None:
        return _no_sync()
    target = request.query_params.get("target")
    if target is not None and target not in brake.targets:
        return JSONResponse({"error": f"unknown target {target!r}"}, 400)
    items = await brake.held(target)
    return JSONResponse({"brake": await brake.status(), "held": [item.as_dict() for item in items]})


async def _decision_body(request: Request) -> tuple[str | None, list[str] | None]:
    try:
        body: Any = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise DecisionError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise DecisionError('send {"ids": ["User/<id>", …]} or {"all": true}')
    target, ids, everything = body.get("target"), body.get("ids"), body.get("all")
    if target is not None and not isinstance(target, str):
        raise DecisionError("target must be a string")
    if everything is True and ids is None:
        return target, None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise DecisionError('name what to decide: {"ids": ["User/<id>", …]} or {"all": true}')
    return target, ids


def _decide(action: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        brake = _brake(request)
        if brake is None:
            return _no_sync()
        try:
            target, ids = await _decision_body(request)
        except DecisionError as error:
            return JSONResponse({"error": str(error)}, 400)
        try:
            decide = brake.approve if action == "approve" else brake.reject
            count = await decide(_decider(request), target, ids)
        except DecisionError as error:
            return JSONResponse({"error": str(error)}, 409)
        return JSONResponse({"approved" if action == "approve" else "rejected": count})

    return endpoint


async def release(request: Request) -> JSONResponse:
    brake = _brake(request)
    if brake is None:
        return _no_sync()
    try:
        body: Any = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "the body is not JSON"}, 400)
    target = body.get("target") if isinstance(body, dict) else None
    if target is not None and not isinstance(target, str):
        return JSONResponse({"error": "target must be a string"}, 400)
    try:
        released = await brake.release(_decider(request), target)
    except DecisionError as error:
        return JSONResponse({"error": str(error)}, 409)
    return JSONResponse({"released": released})


def routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/held", held, methods=["GET"]),
        Route(f"{prefix}/held/approve", _decide("approve"), methods=["POST"]),
        Route(f"{prefix}/held/reject", _decide("reject"), methods=["POST"]),
        Route(f"{prefix}/held/release", release, methods=["POST"]),
    ]
