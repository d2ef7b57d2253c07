"""Target health in the admin API (sync/quarantine.py).

    GET /admin/api/targets     per target: state (ok / degraded / quarantined), since, trigger and
                               reason, probes so far, next probe, last probe's outcome, this
                               replica's recent failure ratio, changes parked; the brake's state;
                               and the notification channels configured (never their secrets)
    POST /admin/api/targets/{name}/probe
                               probe a quarantined target now (the cause was fixed): it resumes at
                               once if the probe succeeds; 409 when it is not quarantined

Without a sync policy it answers 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def targets(request: Request) -> JSONResponse:
    sync = request.app.state.sync
    if sync is None:
        return JSONResponse({"error": "no sync policy is running: no target is configured"}, 404)
    health = await sync.engine.quarantine.status()
    brake = (await sync.engine.brake.status())["targets"]
    for name, state in health["targets"].items():
        state["brake"] = {"engaged": brake.get(name, {}).get("engaged"), "held": brake.get(name, {}).get("held")}
    return JSONResponse(
        {"quarantine_enabled": health["enabled"], "targets": health["targets"], "notify": sync.notifier.channels}
    )


async def probe(request: Request) -> JSONResponse:
    sync, name = request.app.state.sync, request.path_params["name"]
    if sync is None or name not in sync.engine.targets:
        return JSONResponse({"error": f"no target {name!r} is configured"}, 404)
    principal = request.scope.get("state", {}).get("principal")
    by = f"admin:{principal.name}" if getattr(principal, "name", None) else "admin"
    if not await sync.engine.quarantine.probe_now(name, by):
        return JSONResponse({"error": f"{name} is not quarantined: nothing to probe"}, 409)
    return JSONResponse({"probe": "requested", "target": name}, 202)


def routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/targets", targets, methods=["GET"]),
        Route(prefix + "/targets/{name}/probe", probe, methods=["POST"]),
    ]
