"""Tolerate `…/scim/v2/` + `/Users` (checklist 7): collapse doubled slashes, drop a trailing one."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_SLASHES = re.compile(r"/{2,}")


class PathNormalizer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "//" in scope["path"] or (scope["path"].endswith("/") and scope["path"] != "/")
        ):
            path = scope["path"]
            cleaned = _SLASHES.sub("/", path)
            if len(cleaned) > 1:
                cleaned = cleaned.rstrip("/")
            if cleaned != path:
                scope = {**scope, "path": cleaned, "raw_path": cleaned.encode()}
        await self.app(scope, receive, send)
