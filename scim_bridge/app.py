"""The Starlette application: routes, middleware and lifespan, assembled from settings."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .audit.last_login import LastLoginPoller
from .audit.middleware import AuditMiddleware
from .audit.trail import AuditTrail
from .auth.credentials import CredentialBook
from .auth.middleware import Authenticator, AuthMiddleware
from .auth.oauth import token_endpoint
from .auth.tokens import ExternalIssuer
from .config import Settings
from .origins import Origins
from .scim import routes as scim_routes
from .scim.bulk import BulkProcessor
from .scim.dispatch import ScimDispatcher, client_gone
from .scim.errors import SCIM_CONTENT_TYPE, ScimError
from .scim.listing import CursorCodec, Lister
from .scim.resources import ResourceService, ServiceOptions
from .store import Store, StoreUnavailable, open_store
from .store.job_leases import AUDIT_CHAIN, LAST_LOGIN, JobLeases
from .sync.runtime import SyncRuntime
from .sync.status import resource_status
from .sync.worker import WorkerOptions
from .targets.http import CALL_OBSERVER
from .web import activity_admin, admin, api_v1, console, reconcile_admin, review_admin, webhooks
from .web import metrics as metrics_web
from .web.admin import AdminAuth
from .web.capture import CaptureMiddleware
from .web.front import FrontDoor
from .web.health import health, live, ready

log = logging.getLogger("scim_bridge")


def _error_response(error: ScimError) -> Response:
    return Response(error.body(), status_code=error.status, headers=error.headers, media_type=SCIM_CONTENT_TYPE)


async def _scim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScimError)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {404: "no such endpoint", 405: "method not allowed on this endpoint"}.get(exc.status_code, str(exc.detail))
    return _error_response(ScimError(exc.status_code, detail))


async def _client_gone(request: Request, exc: Exception) -> Response:
    return client_gone(request.scope)


async def _unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailable):
        return _error_response(ScimError(503, "the store is unavailable, retry later", headers={"Retry-After": "5"}))
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error_response(ScimError(500, "internal error; the request was not applied"))


def create_app(settings: Settings, store: Store | None = None, after_start: Any = None) -> Starlette:
    store = store or open_store(settings.store, settings.redis_options())
    options = ServiceOptions(
        delete_mode=settings.delete_mode,
        put_keeps_active=settings.put_keeps_active,
        put_keeps_members=settings.put_keeps_members,
        strict_members=settings.strict_members,
        group_patch_returns_resource=settings.group_patch_returns_resource,
    )
    service = ResourceService(store, options)
    trail = AuditTrail(store, settings.audit_retention_days)
    service.audit = trail  # each SCIM write stores its audit entry in the same atomic step
    stop_auditing = asyncio.Event()
    leases = JobLeases(store)  # the jobs that run once per deployment, on whichever replica holds each
    trail.chains_here = lambda: leases.holds(AUDIT_CHAIN)
    book = CredentialBook(
        store, settings.tokens, settings.basic_user_map(), settings.api_keys, admin_tokens=settings.admin_tokens
    )
    external = (
        ExternalIssuer(settings.jwks_url, settings.jwt_issuer, settings.jwt_audience) if settings.jwks_url else None
    )
    authenticator = Authenticator(book, settings.api_key_header, external)
    cursors = CursorCodec(secrets.token_bytes(32))

    sync: SyncRuntime | None = None
    if settings.policy and settings.sync_workers:
        sync = SyncRuntime.from_file(
            store,
            settings.policy,
            settings.sync_workers,
            WorkerOptions(
                concurrency=settings.sync_concurrency,
                lease_seconds=settings.sync_lease_seconds,
                stop_seconds=settings.shutdown_grace_seconds,
            ),
            leases,
        )

    if sync is not None:
        targets = list(sync.engine.targets)

        async def sync_status(resource_type: str, scim_id: str, last_modified: str | None) -> list[dict[str, Any]]:
            states = await resource_status(store, targets, resource_type, scim_id, last_modified)
            return [{"target": name, **state} for name, state in states.items()]

        service.sync_status = sync_status

    # Activity in the targets: webhook receivers, and last-login polling through the translators.
    hooks = webhooks.receivers(settings, store, sync.engine.policy if sync is not None else None)
    trail.also_prune.append(hooks.activity.prune)  # target activity follows the audit trail's retention
    poller: LastLoginPoller | None = None
    if sync is not None and sync.engine.targets and settings.last_login_poll_seconds:
        poller = LastLoginPoller(
            store, sync.engine.targets, settings.last_login_poll_seconds, hooks.activity.identities
        )
        poller.skip = sync.engine.quarantine.blocks
        poller.polls_here = lambda: leases.holds(LAST_LOGIN)
    stop_polling = asyncio.Event()
    operator_console = console.Console(store, settings.console_idle_minutes)  # /console (web/console)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        # Target calls from tasks started here (sync workers, pollers) are recorded in the trail;
        # requests get the same from AuditMiddleware.
        CALL_OBSERVER.set(trail.record_target_call)
        stop_auditing.clear()
        renewing = asyncio.create_task(leases.run(stop_auditing))
        auditing = asyncio.create_task(trail.run(stop_auditing))  # chaining (Redis) and retention
        try:
            # Cursors must stay valid across replicas and restarts: derive their key from the
            # shared signing key.
            cursors.secret = hashlib.sha256(b"cursor:" + await book.signing_key()).digest()
        except StoreUnavailable:
            log.warning("store unavailable at start-up; SCIM answers 503 until it is back")
        if after_start is not None:
            await after_start(app)
        if sync is not None:
            sync.start()
        if poller is not None:
            await leases.settled()  # the first poll is due at once: know whether it is this replica's
        polling = asyncio.create_task(poller.run(stop_polling)) if poller is not None else None
        if settings.console:
            operator_console.start()  # the Overview's charts sample the store every 30 s
        yield
        if settings.console:
            await operator_console.stop()
        if polling is not None:  # before the targets' clients close; a poll in flight is abandoned
            stop_polling.set()
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
        if sync is not None:
            await sync.stop()
        stop_auditing.set()  # after the workers, so their last target calls are chained too
        await auditing
        await renewing  # hands the job leases back, so another replica takes the jobs at once
        await store.close()

    # paths made tolerable, `/` for a browser, the request series: one layer (web/front.py)
    middleware = [Middleware(FrontDoor, metrics=settings.metrics, console=settings.console)]
    middleware.append(Middleware(AuditMiddleware, trail=trail))
    if settings.capture:
        extra = {settings.api_key_header.lower()} if settings.api_key_header else set()
        middleware.append(
            Middleware(
                CaptureMiddleware,
                path=settings.capture,
                extra_secret_headers=extra,
                max_body_bytes=settings.max_body_bytes,
            )
        )
    middleware.append(Middleware(AdminAuth, tokens=settings.admin_tokens))
    middleware.append(Middleware(api_v1.OpenJwks, store=store))  # the context tokens' public key, unauthenticated
    middleware.append(Middleware(AuthMiddleware, authenticator=authenticator))
    middleware.append(Middleware(ScimDispatcher, routes=scim_routes.routes()))

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Route("/oauth/token", token_endpoint, methods=["POST"]),
            *(
                [Route("/metrics", metrics_web.endpoint, methods=["GET"])] if settings.metrics else []
            ),  # `metrics` scope
            *admin.routes(),
            *activity_admin.routes(),
            *reconcile_admin.routes(),
            *review_admin.routes(),
            *webhooks.routes(),
            *api_v1.routes(),
            *(console.routes() if settings.console else []),
        ],
        middleware=middleware,
        exception_handlers={
            ScimError: _scim_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.origins = Origins.of(settings)  # meta.location, $ref and iss: never an untrusted Host
    app.state.store = store
    app.state.audit = trail
    app.state.auth = authenticator
    app.state.scim_service = service
    app.state.scim_lister = Lister(service, cursors, settings.max_filter_cost)
    app.state.scim_bulk = BulkProcessor(service)
    app.state.sync = sync
    app.state.metrics = metrics_web.StoreGauges(store, sync)
    app.state.webhooks = hooks
    app.state.last_login = poller
    app.state.console = operator_console
    return app
