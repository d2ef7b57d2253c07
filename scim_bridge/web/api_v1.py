"""The apps' API (/api/v1/): who must approve where, and what a user's delivery context is.

Behind the SCIM credentials (AuthMiddleware: bearer tokens, OAuth, Basic, API keys, external
JWTs); answers JSON, errors as `{"error": "…"}`. Read-only: nothing here changes a resource.

    GET /api/v1/reviewers?target=cloudinary&folder=PATH      reviewer groups and their active members
    GET /api/v1/reviewers?target=iconik&collection=TITLE
    GET /api/v1/context/{userName or id}                      region, locale, language, business unit,
                                                              the folders granted, metadata selectors
        ?format=jwt or Accept: application/jwt                the same claims, signed (ES256)
    GET /api/v1/context/jwks.json                             the public key (open: see OpenJwks)

Reviewer routing exists because neither target routes approvals to people: Cloudinary's
moderation queue has no assignee and its moderate policy is global per product environment
(research/cloudinary.md §4.1), and an iconik approval request names users or groups that the
caller must choose (research/iconik.md §6). Delivery context exists because a Cloudinary user
carries no custom attributes (research/cloudinary.md §6): the bridge holds them and tells apps.

The context token is signed with an ES256 key pair kept in the store's key/value space (created
once, shared by replicas), so an app verifies it with the public key alone and never holds a
bridge secret; the HS256 key of the bridge's own access tokens is never used for it.
"""

from __future__ import annotations

import fnmatch
import time
from typing import Any

import orjson
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth.credentials import KEYS
from ..scim.filters import fold
from ..store import Store
from ..sync.access import fill
from ..sync.access_sync import ACCESS
from ..sync.desired import AccessModel
from ..sync.idmap import IdMap
from ..sync.policy import Policy, UserFacts, section_model
from ..sync.reviewers import is_active, matches, reviewer_group
from ..targets.registry import TARGETS

PREFIX = "/api/v1"
JWKS_PATH = f"{PREFIX}/context/jwks.json"
CONTEXT_KEY = "context-es256"  # in KEYS: the private JWK (JSON) that signs context tokens
JWT_TYPE = "application/jwt"  # RFC 7519 §10.3.1


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _policy(request: Request) -> Policy | None:
    sync = request.app.state.sync
    return sync.engine.policy if sync is not None else None


# reviewer routing ------------------------------------------------------------------------------
async def reviewers(request: Request) -> Response:
    """Who must approve in a folder (Cloudinary) or a collection (iconik)."""
    policy = _policy(request)
    if policy is None:
        return _error(404, "reviewer routing needs a sync policy (SCIM_BRIDGE_POLICY); none is loaded")
    target = request.query_params.get("target", "")
    # what each target's approvals are scoped by, and the query parameter that names it
    scopes = {name: scope for name in TARGETS if (scope := section_model(name).REVIEW_SCOPE)}
    if target not in scopes:
        return _error(400, f"target must be one of {', '.join(scopes)}")
    scope = scopes[target]
    where = request.query_params.get(scope, "").strip()
    if scope == "folder":
        where = where.strip("/")
    if not where:
        return _error(400, f"{target} approvals are scoped by {scope}: give ?{scope}=")
    store = request.app.state.store
    rules = [
        (index, rule)
        for index, rule in enumerate(policy.access.reviewers)
        if matches(rule.folders if scope == "folder" else rule.collections, where)
    ]
    answers = [await reviewer_group(store, policy, target, index, rule.group) for index, rule in rules]
    body: dict[str, Any] = {"target": target, scope: where, "reviewers": answers}
    if section_model(target).APPROVAL_REQUEST:  # iconik: ready for POST …/approvals/request/ (research/iconik.md §6)
        # Users are listed as well as groups: whether iconik evaluates a group's membership at request
        # time or at vote time is unconfirmed, and a removed reviewer must not keep a vote.
        body["approvalRequest"] = {
            "users": sorted({m["targetId"] for a in answers for m in a["members"] if m.get("targetId")}),
            "groups": sorted({a["targetGroup"]["id"] for a in answers if (a["targetGroup"] or {}).get("id")}),
        }
    return JSONResponse(body)


# delivery context ------------------------------------------------------------------------------
async def context(request: Request) -> Response:
    """A user's delivery context, as JSON or as a signed JWT."""
    policy = _policy(request)
    if policy is None:
        return _error(404, "the delivery context needs a sync policy (SCIM_BRIDGE_POLICY); none is loaded")
    store = request.app.state.store
    wanted = request.path_params["user"]
    record, group_ids = await store.get_with_referrers("User", wanted, "Group", "members.value")
    if record is None:
        found = await store.lookup("User", "username", fold(wanted))
        if found:
            record, group_ids = await store.get_with_referrers("User", found[0], "Group", "members.value")
    if record is None:
        return _error(404, f"no user with id or userName {wanted!r}")
    document = orjson.loads(record.body)
    groups = {g.id: orjson.loads(g.body).get("displayName", "") for g in await store.get_many("Group", group_ids)}
    group_names = list(groups.values())
    claims = delivery_context(policy, record.id, document, group_names)
    claims["folders"] = await granted_folders(store, policy, record.id, document, groups)
    claims["active"] = await is_active(store, policy, record.id, document, group_names)
    as_jwt = request.query_params.get("format") == "jwt" or JWT_TYPE in request.headers.get("accept", "")
    if not as_jwt:
        return JSONResponse(claims)
    if not claims["active"]:  # a token must not vouch for a leaver, even for its few minutes
        return _error(403, f"user {document.get('userName')!r} is not active; no context token is issued")
    key = await context_key(store)
    now = int(time.time())
    payload = {k: v for k, v in claims.items() if v is not None}  # JWT style: an unknown claim is absent
    payload.update(iss=_issuer(request), sub=record.id, iat=now, exp=now + policy.access.context.jwt_ttl_seconds)
    token = jwt.encode({"alg": "ES256", "typ": "JWT", "kid": key.kid}, payload, key, algorithms=["ES256"])
    return Response(token, media_type=JWT_TYPE, headers={"Cache-Control": "no-store"})


def delivery_context(policy: Policy, scim_id: str, document: dict[str, Any], group_names: list[str]) -> dict[str, Any]:
    """The policy's `access.context` templates filled from the user's attributes; a template
    naming an attribute the user lacks gives null (a selector) or is left out (a map entry).
    `folders` is filled in by `granted_folders`: what the person really holds, not a template."""
    attributes = UserFacts.of(document, group_names).attributes
    template = policy.access.context
    metadata = {k: fill(t, attributes) for k, t in template.metadata.items()}
    return {
        "user": {"id": scim_id, "userName": document.get("userName")},
        "region": fill(template.region, attributes),
        "locale": fill(template.locale, attributes),
        "language": fill(template.language, attributes),
        "businessUnit": fill(template.business_unit, attributes),
        "folders": [],
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }


async def granted_folders(
    store: Store, policy: Policy, scim_id: str, document: dict[str, Any], groups: dict[str, str]
) -> list[str]:
    """The folders the person holds a role on: the desired-access model's allowed folder grants
    (sync/desired.py: an external person's are already held to `access.external`, a withheld group
    gives nothing), on an enabled account, through a group the engine made it a member of, that the
    last grants run applied. So an app is never told of a folder not yet created or granted (it
    may lag the directory by one sync pass, never lead it). `access.context.folders`, when set,
    narrows the list (globs, templates filled; a folder also matches below a listed one)."""
    person = AccessModel(policy).person(scim_id, document, groups)
    attributes = UserFacts.of(document, list(groups.values())).attributes
    narrow = [f for f in (fill(t, attributes) for t in policy.access.context.folders) if f]
    found: set[str] = set()
    for target, access in person.targets.items():
        if access.account is None or not access.account.enabled:
            continue
        raw = await store.kv_get(ACCESS, f"{target}:applied")  # path → {group: roles} the grants run gave
        applied: dict[str, dict[str, list[str]]] = orjson.loads(raw) if raw else {}
        member_of = set(((await IdMap(store).get(target, "User", scim_id)) or {}).get("group_names", {}).values())
        found |= {
            e.subject
            for e in access.allowed("folder")
            if e.via in member_of and set(e.rights) <= set(applied.get(e.subject, {}).get(e.via, []))
        }
    if policy.access.context.folders:
        found = {f for f in found if any(_under(f, pattern) for pattern in narrow)}
    return sorted(found)


def _under(path: str, pattern: str) -> bool:
    lowered, pattern = path.lower(), pattern.lower().strip("/")
    return fnmatch.fnmatchcase(lowered, pattern) or lowered.startswith(pattern + "/")


def _issuer(request: Request) -> str:
    """The bridge's public URL (SCIM_BRIDGE_PUBLIC_URL), else a trusted Host it was called at
    (SCIM_BRIDGE_ALLOWED_HOSTS), else its bind address: never a Host nobody vouched for."""
    return request.app.state.origins.origin(request.scope)  # type: ignore[no-any-return]


async def context_key(store: Store) -> ECKey:
    """The P-256 key pair that signs context tokens; created once, shared by replicas (the first
    writer wins, as with the HS256 key in auth/credentials.py)."""
    raw = await store.kv_get(KEYS, CONTEXT_KEY)
    if raw is None:
        fresh = ECKey.generate_key("P-256", private=True, auto_kid=True)
        await store.kv_put(KEYS, CONTEXT_KEY, orjson.dumps(fresh.as_dict(private=True)), only_if_absent=True)
        raw = await store.kv_get(KEYS, CONTEXT_KEY)
    assert raw is not None
    return ECKey.import_key(orjson.loads(raw))


async def jwks_document(store: Store) -> dict[str, Any]:
    key = await context_key(store)
    return {"keys": [{**key.as_dict(private=False), "use": "sig", "alg": "ES256"}]}


class OpenJwks:
    """Serves GET /api/v1/context/jwks.json ahead of AuthMiddleware: a public key is no secret, and
    the app a context token is passed along to should verify it without holding bridge credentials
    (the way OpenID providers publish their JWKS). Everything else passes through to authentication."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != JWKS_PATH or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(await jwks_document(self.store), headers={"Cache-Control": "public, max-age=300"})
        await response(scope, receive, send)


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/reviewers", reviewers, methods=["GET"]),
        Route(PREFIX + "/context/{user}", context, methods=["GET"]),
    ]
