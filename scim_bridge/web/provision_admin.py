"""Provision on demand and the provisioning log in the admin API (sync/provision.py,
audit/provisioning.py).

    POST /admin/api/users/{id}/provision     sync one user now (id or userName); ?dry_run=true: no write
    POST /admin/api/groups/{id}/provision    the group and its members (at most 50; more → 400)
    GET  /admin/api/provisioning             the log: user, group, target, status, since, until,
                                             correlation, after, limit; format=json (paged like
                                             /admin/api/audit), jsonl or csv (streamed)

Unknown user or group → 404; a worker busy with the same resource for over 10 s → 409; without a
sync policy the provision endpoints answer 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..audit import provisioning
from ..audit.trail import AuditTrail, parse_time
from ..sync.provision import Provisioner, ProvisionError

MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _dry_run(request: Request) -> bool:
    return request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")


def _provision(kind: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        sync = request.app.state.sync
        if sync is None:
            return JSONResponse({"error": "no sync policy is running: nothing can be provisioned"}, 404)
        provisioner = Provisioner(sync.engine)
        scim_id = request.path_params["id"]
        try:
            if kind == "User":
                answer = await provisioner.user(scim_id, _dry_run(request))
            else:
                answer = await provisioner.group(scim_id, _dry_run(request))
        except ProvisionError as error:
            return JSONResponse({"error": error.message}, error.status)
        return JSONResponse(answer)

    return endpoint


async def provisioning_log(request: Request) -> Response:
    trail: AuditTrail = request.app.state.audit
    params = request.query_params
    try:
        filters = provisioning.ProvisioningFilter(
            user=params.get("user") or None,
            group=params.get("group") or None,
            target=params.get("target") or None,
            status=params.get("status") or None,
            correlation=params.get("correlation") or None,
            since=parse_time(params.get("since")),
            until=parse_time(params.get("until")),
        )
        after = int(params.get("after") or 0)
        limit = int(params["limit"]) if params.get("limit") else None
    except ValueError as error:
        return JSONResponse({"error": f"bad filter: {error}"}, 400)
    fmt = params.get("format", "json")
    if fmt == "json":
        found, next_seq = await provisioning.query(trail, filters, min(limit or 100, 1000), after)
        return JSONResponse({"entries": found, "next": next_seq})
    if fmt not in MEDIA_TYPES:
        return JSONResponse({"error": "format is json, jsonl or csv"}, 400)

    async def records() -> AsyncIterator[dict[str, Any]]:
        count = 0
        async for record in provisioning.entries(trail, filters, after):
            yield record
            count += 1
            if limit is not None and count >= limit:
                return

    return StreamingResponse(
        provisioning.export(records(), fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="provisioning.{fmt}"'},
    )


def routes(prefix: str) -> list[Route]:
    return [
        Route(prefix + "/users/{id}/provision", _provision("User"), methods=["POST"]),
        Route(prefix + "/groups/{id}/provision", _provision("Group"), methods=["POST"]),
        Route(f"{prefix}/provisioning", provisioning_log, methods=["GET"]),
    ]
