"""Scopes: what each credential may do, and what each route needs. The one place that decides.

    scim:read    GET/HEAD on /scim/v2 (resources, lists, discovery) and POST …/.search
    scim:write   every other method on /scim/v2 (POST, PUT, PATCH, DELETE, Bulk); implies scim:read,
                 because no provisioning client can write without reading (it GETs or filters a
                 user before it PATCHes it) and a write answers with the resource anyway
    apps         /api/v1/* (reviewer routing, delivery context) and nothing else
    metrics      GET /metrics (a Prometheus scrape credential) and nothing else; admin may scrape too
    console      the operator console at /console, read-only (web/console); `admin` opens it as an
                 operator (replay, approve, provision, apply). The console checks its own session
                 cookie, so AuthMiddleware lets /console through (a bearer token logs in once)
    admin        /admin/api/* (audit, a person's timeline /admin/api/people/{id}/timeline, …) and any
                 route this table does not name

Routes fail closed: a route added outside /scim/v2 and /api/v1 without an entry here needs
`admin`, so a SCIM or app credential never reaches it by accident, while an operator can.
Credentials that predate scopes (SCIM_BRIDGE_TOKENS, Basic users, API keys, stored tokens and
clients without a `scopes` field) get DEFAULT: what they could do before, and never `admin`.
"""

from __future__ import annotations

from collections.abc import Iterable

READ, WRITE, APPS, METRICS, ADMIN = "scim:read", "scim:write", "apps", "metrics", "admin"
CONSOLE = "console"
KNOWN = (READ, WRITE, APPS, METRICS, CONSOLE, ADMIN)
DEFAULT = frozenset({READ, WRITE, APPS})
ADMIN_ONLY = frozenset({ADMIN})
#: other spellings of the same scopes: `scim`, which /oauth/token accepted and echoed before scopes
#: meant anything (a configured client may still send it), and dots for issuers that avoid colons
ALIASES = {"scim": (READ, WRITE), "scim.read": (READ,), "scim.write": (WRITE,)}

SCIM_PREFIX = "/scim/v2"
APPS_PREFIX = "/api/v1"
ADMIN_PREFIX = "/admin"
METRICS_PATH = "/metrics"
CONSOLE_PATH = "/console"  # its pages check the console session (web/console/session.py)
#: open (/health, the Kubernetes probes /health/live and /health/ready, /oauth/token) or
#: authenticated elsewhere: /webhooks by the sender's signature (web/webhooks.py), /emulators only
#: in the sandbox
OPEN_PATHS = ("/health", "/health/live", "/health/ready", "/oauth/token")
OWN_AUTH_PREFIXES = ("/webhooks/", "/emulators/")
_READ_METHODS = ("GET", "HEAD", "OPTIONS")


class ScopeError(ValueError):
    """An unknown scope name, with the names that exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown scope {name!r} (known: {', '.join(KNOWN)})")
        self.name = name


def parse(values: Iterable[str]) -> frozenset[str]:
    """Scope names from CLI arguments or a token request: comma- or space-separated, repeatable.
    Raises ScopeError on a name that is neither known nor an alias."""
    scopes: set[str] = set()
    for value in values:
        for name in value.replace(",", " ").split():
            scopes.update(_canonical(name) or _unknown(name))
    return frozenset(scopes)


def from_claims(claims: dict[str, object]) -> frozenset[str]:
    """An external JWT's scopes: the `scope` claim (RFC 9068, space-separated) or `scp` (Entra:
    a string or a list), known names and aliases only; anything else in them is ignored. A token
    with neither claim keeps DEFAULT, as external JWTs had before scopes existed."""
    raw = claims.get("scope", claims.get("scp"))
    if raw is None:
        return DEFAULT
    names = raw.split() if isinstance(raw, str) else [str(n) for n in raw] if isinstance(raw, list) else []
    return frozenset(scope for name in names for scope in _canonical(name))


def stored(record: dict[str, object]) -> frozenset[str]:
    """The scopes of a stored token or client record; records from before scopes get DEFAULT."""
    value = record.get("scopes")
    if not isinstance(value, list):
        return DEFAULT
    return frozenset(str(name) for name in value if name in KNOWN)


def allows(granted: frozenset[str], needed: str) -> bool:
    return (
        needed in granted
        or (needed == READ and WRITE in granted)
        or (needed == METRICS and ADMIN in granted)  # an operator may look at what Prometheus sees
        or (needed == CONSOLE and ADMIN in granted)  # an admin credential opens the console as operator
    )


def within(asked: frozenset[str], held: frozenset[str]) -> frozenset[str]:
    """What of `asked` the holder of `held` may have (scim:read is within scim:write)."""
    return frozenset(name for name in asked if allows(held, name))


def required(method: str, path: str) -> str | None:
    """The scope a request needs, or None for the paths that are open or authenticate themselves."""
    bare = path.rstrip("/") or "/"
    if bare in OPEN_PATHS or path.startswith(OWN_AUTH_PREFIXES):
        return None
    if bare == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/"):
        return None  # the console's session cookie (its login page takes a console or admin token)
    if bare == SCIM_PREFIX or path.startswith(SCIM_PREFIX + "/"):
        if method in _READ_METHODS or (method == "POST" and bare.lower().endswith("/.search")):
            return READ
        return WRITE  # POST, PUT, PATCH, DELETE, Bulk, and any method nobody has thought of
    if bare == APPS_PREFIX or path.startswith(APPS_PREFIX + "/"):
        return APPS
    if bare == METRICS_PATH:
        return METRICS
    return ADMIN  # /admin/api, and every route not named above


def describe(scopes: Iterable[str]) -> str:
    """Scopes in a stable order, space-separated (the token response's `scope`, `credentials list`)."""
    given = set(scopes)
    return " ".join(name for name in KNOWN if name in given) or "(none)"


def _canonical(name: str) -> tuple[str, ...]:
    lowered = name.strip().lower()
    if lowered in KNOWN:
        return (lowered,)
    return ALIASES.get(lowered, ())


def _unknown(name: str) -> tuple[str, ...]:
    raise ScopeError(name)
