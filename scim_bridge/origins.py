"""The bridge's own origin (scheme://host[:port]) for the URLs it writes: `meta.location`, `$ref`,
Bulk locations, discovery documents, the context JWT's `iss`.

A URL the bridge writes down is read later by other clients (a stored `meta.location` is served to
every reader), so it is never built from a Host header the bridge has not been told to trust:

1. `SCIM_BRIDGE_PUBLIC_URL`, when set, is the origin, whatever the request says;
2. else the request's Host, if it is in `SCIM_BRIDGE_ALLOWED_HOSTS` (entries `name`, matching
   any port, `name:port`, `*.example.com` for subdomains, or `*` for any Host);
   the default list is localhost, 127.0.0.1 and [::1] and the bind address, each with the port;
3. else a fixed default: the first allowed entry without a wildcard (the bind address).

Neutral: imports nothing from the bridge, so scim/ and web/ both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_HOST = re.compile(r"^(?:[a-z0-9\-._~]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$")
_WILDCARD_BINDS = {"0.0.0.0", "::", "", "[::]"}


def default_hosts(host: str, port: int) -> list[str]:
    bind = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = [] if bind in _WILDCARD_BINDS else [bind.lower()]
    names += [n for n in ("localhost", "127.0.0.1", "[::1]") if n not in names]
    return [f"{name}:{port}" for name in names]


class Origins:
    def __init__(self, public_url: str | None, allowed_hosts: Iterable[str], host: str, port: int) -> None:
        self.fixed = public_url.rstrip("/") if public_url else None
        allowed = [h.strip().lower() for h in allowed_hosts if h.strip()] or default_hosts(host, port)
        self.any_host = "*" in allowed
        self.exact = frozenset(h for h in allowed if not h.startswith("*"))
        self.suffixes = tuple(h[1:] for h in allowed if h.startswith("*."))  # ".example.com"
        plain = [h for h in allowed if not h.startswith("*")]
        self.default_host = plain[0] if plain else default_hosts(host, port)[0]

    @classmethod
    def of(cls, settings: Any) -> Origins:
        return cls(settings.public_url, settings.allowed_hosts, settings.host, settings.port)

    def allows(self, host: str) -> bool:
        host = host.lower()
        if not _HOST.match(host):
            return False
        if self.any_host or host in self.exact:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name in self.exact:
            return True
        return bool(self.suffixes) and name.endswith(self.suffixes)

    def origin(self, scope: Any) -> str:
        """scheme://host of this bridge for URLs given to the client of `scope` (an ASGI scope)."""
        if self.fixed:
            return self.fixed
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
                if self.allows(host):
                    return f"{scope['scheme']}://{host}"
                break
        return f"{scope['scheme']}://{self.default_host}"
