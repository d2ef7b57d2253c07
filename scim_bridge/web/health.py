"""GET /health: the one endpoint without credentials. 200 when the store answers, else 503."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..store import StoreUnavailable


async def health(request: Request) -> JSONResponse:
    try:
        await request.app.state.store.ping()
    except StoreUnavailable:
        return JSONResponse(
            {"status": "degraded", "store": "unavailable"}, status_code=503, headers={"Retry-After": "5"}
        )
    return JSONResponse({"status": "ok", "store": "ok"})
