"""Console sessions, kept in the Store so every replica (SQLite or Redis) sees the same ones.

A login exchanges a console or admin credential (a bearer token, checked by the app's
Authenticator) for a random session id in an HttpOnly, SameSite=Strict cookie (Secure over
HTTPS). The store keeps only the id's SHA-256 digest, the holder's name, role and CSRF token, and
when the session was last used: an idle session ends after `idle_seconds`, any session after
MAX_SECONDS. The credential itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import asdict, dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...auth import scopes
from ...auth.credentials import Principal
from ...store import Store

NAMESPACE = "console-sessions"
COOKIE = "sb_console"
PATH = "/console"
MAX_SECONDS = 12 * 3600.0  # a session ends after a working day whatever its use
TOUCH_SECONDS = 15.0  # `seen` is rewritten at most this often (each request would be a store write)
OPERATOR, READ_ONLY = "operator", "read-only"


def role_of(principal: Principal) -> str | None:
    """admin → operator; console → read-only; anything else may not log in."""
    if scopes.ADMIN in principal.scopes:
        return OPERATOR
    if scopes.CONSOLE in principal.scopes:
        return READ_ONLY
    return None


@dataclass
class Session:
    key: str  # digest of the cookie's id
    name: str  # who logged in (the credential's name, never its secret)
    kind: str
    role: str
    csrf: str
    created: float
    seen: float

    @property
    def operator(self) -> bool:
        return self.role == OPERATOR

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf.encode())  # type: ignore[union-attr]


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, store: Store, idle_seconds: float) -> None:
        self.store = store
        self.idle_seconds = idle_seconds

    async def create(self, principal: Principal, role: str) -> tuple[str, Session]:
        await self._prune()
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(
            _digest(session_id), principal.name, principal.kind, role, secrets.token_urlsafe(24), now, now
        )
        await self.store.kv_put(NAMESPACE, session.key, orjson.dumps(asdict(session)))
        return session_id, session

    async def current(self, request: Request, touch: bool = True) -> Session | None:
        """The request's live session, or None. `touch` (a page, a form) keeps it alive; the
        Overview's polling does not, so a console left open still times out."""
        session_id = request.cookies.get(COOKIE)
        if not session_id:
            return None
        key = _digest(session_id)
        raw = await self.store.kv_get(NAMESPACE, key)
        if raw is None:
            return None
        session = Session(**orjson.loads(raw))
        now = time.time()
        if now - session.seen > self.idle_seconds or now - session.created > MAX_SECONDS:
            await self.store.kv_delete(NAMESPACE, key)
            return None
        if touch and now - session.seen > min(TOUCH_SECONDS, self.idle_seconds / 10):
            session.seen = now
            await self.store.kv_put(NAMESPACE, key, orjson.dumps(asdict(session)))
        return session

    async def end(self, session: Session) -> None:
        await self.store.kv_delete(NAMESPACE, session.key)

    async def _prune(self) -> None:
        """Forget sessions that timed out without a logout (done at each login: there are few)."""
        now = time.time()
        for key, raw in await self.store.kv_items(NAMESPACE):
            record = orjson.loads(raw)
            if now - record["seen"] > self.idle_seconds or now - record["created"] > MAX_SECONDS:
                await self.store.kv_delete(NAMESPACE, key)


def secure(request: Request) -> bool:
    """Secure cookies when the console is served over HTTPS (directly, or as the public URL says)."""
    public = request.app.state.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def set_cookie(response: Response, request: Request, name: str, value: str, path: str = PATH) -> None:
    response.set_cookie(name, value, path=path, httponly=True, samesite="strict", secure=secure(request))


def clear_cookie(response: Response, request: Request, name: str, path: str = PATH) -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="strict", secure=secure(request))
