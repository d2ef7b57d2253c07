"""The fuzzers' shared parts: the seed, the request counter, and the checks every answer passes.

Every request a fuzz test sends goes through `Fuzzer.send`, which counts it (generated requests
apart from the reads that verify them) and holds the answer to the invariants of issue 10:
never a 5xx (but /Me's 501 and a store outage's 503), never a dropped connection, and every
error a SCIM error body (RFC 7644 §3.12) whose `status` is the HTTP status as a string.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, settings

from tests.live import TOKEN, LiveBridge

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
# RFC 7644 §3.12 Table 9, RFC 9865 §3 (cursor errors).
SCIM_TYPES = {
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
    "invalidCursor",
    "expiredCursor",
}
REQUIRED_REQUESTS = 20_000

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# What the filters, sorts and PATCHes find: odd Unicode, case variants, extension values.
DIRECTORY_USERS: list[dict[str, Any]] = [
    {"userName": "ada@example.com", "title": "Editor", "active": True, "name": {"givenName": "Ada"}},
    {"userName": "BJÖRK@example.com", "title": "editor", "active": False, "displayName": "Björk Guðmundsdóttir"},
    {"userName": "\u0130stanbul@example.com", "nickName": "\U0001f600", "title": "ＦＵＬＬ"},
    {
        "userName": "zoe@example.com",
        "externalId": "ext-1",
        "emails": [{"value": "zoe@example.com", "type": "work", "primary": True}],
        ENTERPRISE: {"department": "Post", "manager": {"value": "someone"}},
        "schemas": [USER, ENTERPRISE],
    },
    {"userName": "e\u0301clair@example.com", "title": "e\u0301", "locale": "fr-FR"},
]


def _seed() -> int:
    configured = os.environ.get("SCIM_BRIDGE_FUZZ_SEED", "").strip()
    return int(configured) if configured else secrets.randbelow(2**32)


SEED = _seed()
REPLAY = f"SCIM_BRIDGE_FUZZ_SEED={SEED} scripts/test tests/fuzz"


@dataclass
class Tally:
    generated: int = 0  # requests whose content the fuzzers made
    verifying: int = 0  # reads that check what a generated request did
    tests_run: int = 0
    started: float = 0.0  # time.monotonic() when the first fuzz test began


TALLY = Tally()


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for a fuzz test: the run's seed decides, nothing is remembered between
    runs (so a seed replays alone), and a slow live server is not a health problem."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def announce(config: Any, line: str) -> None:
    """Print past pytest's capture, so the line shows in a passing run too."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


class FuzzFailure(AssertionError):
    pass


def describe(response: Any, why: str) -> str:
    """The failing exchange, for httpx's and requests' (schemathesis) responses alike."""
    request = response.request
    content = getattr(request, "content", None) if isinstance(response, httpx.Response) else request.body
    body = content[:600] if content else b""
    return (
        f"{why}\n  {request.method} {request.url}\n  request headers: {dict(request.headers)}\n"
        f"  request body: {body!r}\n  -> {response.status_code} {header(response, 'content-type')}\n"
        f"  {response.text[:800]}\n  replay: {REPLAY}"
    )


def header(response: Any, name: str) -> str | None:
    """A response header from httpx, or from schemathesis (whose headers hold lists)."""
    for key, value in response.headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else str(value)
    return None


def check_answer(response: Any, path: str) -> None:
    """The invariants every answer to every request holds."""
    status = response.status_code
    if status >= 500:
        me = status == 501 and path.split("?")[0].rstrip("/").lower().endswith("/me")
        outage = status == 503 and "store is unavailable" in response.text and header(response, "retry-after")
        if not (me or outage):
            raise FuzzFailure(describe(response, f"a {status}"))
    if status < 400:
        return
    content_type = header(response, "content-type") or ""
    if not content_type.startswith("application/scim+json"):
        raise FuzzFailure(describe(response, "an error that is not application/scim+json"))
    try:
        body = response.json()
    except ValueError:
        raise FuzzFailure(describe(response, "an error body that is not JSON")) from None
    if not isinstance(body, dict) or body.get("schemas") != [ERROR]:
        raise FuzzFailure(describe(response, "an error body without the Error schema"))
    if body.get("status") != str(status):
        raise FuzzFailure(describe(response, "an error whose status is not the HTTP status as a string"))
    scim_type = body.get("scimType")
    if scim_type is not None and scim_type not in SCIM_TYPES:
        raise FuzzFailure(describe(response, f"scimType {scim_type!r} is not one of RFC 7644 §3.12's"))
    if status == 400 and scim_type is None:
        raise FuzzFailure(describe(response, "a 400 without scimType"))
    if status == 409 and scim_type not in (None, "uniqueness"):
        raise FuzzFailure(describe(response, "a 409 whose scimType is not uniqueness"))


class Fuzzer:
    """An authenticated client to one live bridge that counts and checks every answer."""

    def __init__(self, bridge: LiveBridge) -> None:
        self.bridge = bridge
        self.http = httpx.Client(
            base_url=bridge.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, follow_redirects=False
        )

    def close(self) -> None:
        self.http.close()

    def send(self, method: str, path: str, *, generated: bool = True, **kwargs: Any) -> httpx.Response:
        try:
            # An absolute URL: httpx would read a path opening with "//" as a host and port.
            response = self.http.request(method, self.bridge.base + path, **kwargs)
        except httpx.TransportError as error:
            raise FuzzFailure(f"dropped connection on {method} {path}: {error!r}\n  replay: {REPLAY}") from None
        if generated:
            TALLY.generated += 1
        else:
            TALLY.verifying += 1
        check_answer(response, path)
        return response

    def read(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.send("GET", path, generated=False, **kwargs)

    def totals(self) -> tuple[int, int]:
        """How many users and groups exist (to show a refused write left nothing behind)."""
        users = self.read("/Users", params={"count": "0"}).json()["totalResults"]
        groups = self.read("/Groups", params={"count": "0"}).json()["totalResults"]
        return users, groups
