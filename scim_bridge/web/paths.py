"""Tolerate `…/scim/v2/` + `/Users` (checklist 7): collapse doubled slashes, drop a trailing one."""

from __future__ import annotations

import re

from starlette.types import Scope

_SLASHES = re.compile(r"/{2,}")


def normalized(scope: Scope) -> Scope:
    """The scope with doubled slashes collapsed and a trailing one dropped (a copy when changed, so
    the server's own scope keeps the raw path). Called by web/front.py's FrontDoor."""
    path: str = scope["path"]
    if "//" in path or (path.endswith("/") and path != "/"):
        cleaned = _SLASHES.sub("/", path)
        if len(cleaned) > 1:
            cleaned = cleaned.rstrip("/")
        if cleaned != path:
            return {**scope, "path": cleaned, "raw_path": cleaned.encode()}
    return scope
