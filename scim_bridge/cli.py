"""`scim-bridge serve | sandbox | plan | explain | provision | provisioning | reconcile | review |
replay | held | audit | credentials | emulate`.

Settings are also SCIM_BRIDGE_* variables."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
from typing import TYPE_CHECKING, Any

from .cli_progress import Progress
from .config import ConfigError, Settings, load_settings
from .sync.policy import PolicyError

if TYPE_CHECKING:
    from .logs import LogFormat


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file of settings (keys as in SCIM_BRIDGE_*, lower case)")
    parser.add_argument("--store", help="sqlite:///path.db (default) or redis://host:port/db  [SCIM_BRIDGE_STORE]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-bridge", description="SCIM 2.0 bridge from OTDS to Cloudinary and iconik"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the SCIM service provider")
    _common(serve)
    serve.add_argument("--host", help="address to listen on [SCIM_BRIDGE_HOST, default 127.0.0.1]")
    serve.add_argument("--port", type=int, help="port [SCIM_BRIDGE_PORT, default 8080]")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="[SCIM_BRIDGE_LOG_LEVEL]")
    serve.add_argument("--capture", help="append every request, secrets removed, as JSON lines [SCIM_BRIDGE_CAPTURE]")
    serve.add_argument("--public-url", help="external base URL used in meta.location [SCIM_BRIDGE_PUBLIC_URL]")
    serve.add_argument("--tokens", help="static bearer tokens, comma-separated [SCIM_BRIDGE_TOKENS]")
    serve.add_argument("--delete-mode", choices=["hard", "deactivate"], help="[SCIM_BRIDGE_DELETE_MODE]")
    serve.add_argument("--policy", help="mapping policy (YAML); turns the sync to the targets on [SCIM_BRIDGE_POLICY]")

    sandbox = commands.add_parser("sandbox", help="the bridge and both emulators in one process, with sample data")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument(
        "--store", help="default: a SQLite file in a temporary folder; a kept one keeps its directory and audit trail"
    )
    sandbox.add_argument("--policy", help="an edited policy to try (its targets are pointed at the emulators)")
    sandbox.add_argument("--credentials-file", help="also write how to reach everything, as JSON, to this file")

    plan_cmd = commands.add_parser("plan", help="print what the directory and a policy would change in each target")
    _common(plan_cmd)
    plan_cmd.add_argument("--policy", required=False, help="the policy to plan with [SCIM_BRIDGE_POLICY]")

    explain_cmd = commands.add_parser("explain", help="show, rule by rule, why a user has each grant in each target")
    _common(explain_cmd)
    explain_cmd.add_argument("user", help="a SCIM id or userName")
    explain_cmd.add_argument("--policy", required=False, help="the policy to explain with [SCIM_BRIDGE_POLICY]")
    explain_cmd.add_argument("--json", action="store_true", help="print JSON instead of text")

    provision_cmd = commands.add_parser("provision", help="sync one user (or a group of ≤ 50) now and show each step")
    _common(provision_cmd)
    provision_cmd.add_argument("user", help="a SCIM id or userName (with --group: a group's id or displayName)")
    provision_cmd.add_argument("--group", action="store_true", help="provision a group and its members")
    provision_cmd.add_argument("--dry-run", action="store_true", help="show the steps and actions; write nothing")
    provision_cmd.add_argument("--policy", required=False, help="the policy [SCIM_BRIDGE_POLICY]")
    provision_cmd.add_argument("--json", action="store_true", help="print JSON instead of text")

    log_cmd = commands.add_parser("provisioning", help="the provisioning log: one entry per object per sync pass")
    _common(log_cmd)
    log_cmd.add_argument("--user", help="SCIM id or userName")
    log_cmd.add_argument("--group", help="SCIM id or displayName (the group's entries and its members')")
    log_cmd.add_argument("--target", help="cloudinary, iconik…")
    log_cmd.add_argument("--status", choices=["success", "failure", "skipped", "held", "warning"])
    log_cmd.add_argument("--correlation", help="one request's or provision's correlation id")
    log_cmd.add_argument("--since", help="ISO 8601 time (UTC unless it says otherwise)")
    log_cmd.add_argument("--until", help="ISO 8601 time, exclusive")
    log_cmd.add_argument("--format", choices=["text", "json", "csv"], default="text", help="json: one entry a line")
    log_cmd.add_argument("--output", help="file to write (default: standard output)")

    reconcile_cmd = commands.add_parser("reconcile", help="compare every target with the directory; --apply repairs")
    _common(reconcile_cmd)
    reconcile_cmd.add_argument("--policy", required=False, help="the policy [SCIM_BRIDGE_POLICY]")
    reconcile_cmd.add_argument("--apply", action="store_true", help="repair what the bridge owns (default: report)")
    reconcile_cmd.add_argument("--json", action="store_true", help="print the report as JSON")

    review_cmd = commands.add_parser("review", help="access review: who holds what in each target, and why")
    _common(review_cmd)
    review_cmd.add_argument("--policy", required=False, help="the policy [SCIM_BRIDGE_POLICY]")
    review_cmd.add_argument("--format", choices=["json", "csv", "html"], default="json")
    review_cmd.add_argument(
        "--section",
        choices=["summary", "users", "resources", "orphans", "dormant", "external"],
        help="CSV only: that section alone (default: every section, with a `section` column)",
    )
    review_cmd.add_argument("--output", help="file to write (default: standard output)")
    review_cmd.add_argument("--dormant-days", type=int, default=90, help="no login for this many days: dormant")

    replay = commands.add_parser("replay", help="requeue the dead letters of the sync engine")
    _common(replay)

    held_cmd = commands.add_parser("held", help="changes held by the deprovision brake: list, approve, reject")
    held_actions = held_cmd.add_subparsers(dest="action", required=True)
    for action, text in (
        ("list", "the brake per target and every held change"),
        ("approve", "let held changes go out (revocation lane first)"),
        ("reject", "keep the access: nothing is sent"),
        ("release", "disengage a brake that holds nothing any more"),
    ):
        sub = held_actions.add_parser(action, help=text)
        _common(sub)
        sub.add_argument("--policy", required=False, help="the running policy [SCIM_BRIDGE_POLICY]")
        sub.add_argument("--target", help="one target only (cloudinary, iconik…)")
        if action in ("approve", "reject"):
            sub.add_argument("ids", nargs="*", help='held changes as "User/<id>" (or a bare user id)')
            sub.add_argument("--all", action="store_true", help="every held change (of --target)")
            sub.add_argument("--by", default=None, help="who decides, for the audit trail (default: $USER)")
        if action == "list":
            sub.add_argument("--json", action="store_true", help="print JSON")

    audit = commands.add_parser("audit", help="verify or export the audit trail")
    audit_actions = audit.add_subparsers(dest="action", required=True)
    verify = audit_actions.add_parser("verify", help="check the hash chain; exit 1 naming the first bad entry")
    _common(verify)
    export = audit_actions.add_parser("export", help="write audit entries as JSON lines or CSV")
    _common(export)
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--since", help="ISO 8601 time (UTC unless it says otherwise)")
    export.add_argument("--until", help="ISO 8601 time, exclusive")
    export.add_argument("--user", help="SCIM id or userName")
    export.add_argument("--group", help="SCIM id or displayName")
    export.add_argument("--target", help="cloudinary, iconik…")
    export.add_argument("--correlation", help="one request's correlation id")
    export.add_argument(
        "--person",
        help="SCIM id or userName: that person's timeline instead (audit trail and target activity, in time order)",
    )
    export.add_argument("--limit", type=int, default=1000, help="with --person: the newest this many entries")
    export.add_argument("--output", help="file to write (default: standard output)")

    emulate = commands.add_parser("emulate", help="run a Cloudinary or iconik API emulator alone")
    emulate.add_argument("target", choices=["cloudinary", "iconik"])
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=8090)
    emulate.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="rate limit: calls per hour (cloudinary) or per second (iconik); 0 = none",
    )

    creds = commands.add_parser("credentials", help="create, list and revoke tokens and OAuth clients")
    _common(creds)
    actions = creds.add_subparsers(dest="action", required=True)
    scope_help = (
        "what the credential may do: scim:read, scim:write (includes read), apps (/api/v1), admin (/admin/api);"
        " repeatable or comma-separated [default: scim:read,scim:write,apps]"
    )
    token = actions.add_parser("create-token", help="a static bearer token (Entra, Okta, OneLogin…, or an admin's)")
    token.add_argument("name")
    token.add_argument("--scope", action="append", default=[], help=scope_help)
    client = actions.add_parser("create-client", help="an OAuth client-credentials client (OTDS)")
    client.add_argument("name")
    client.add_argument("--scope", action="append", default=[], help=scope_help)
    actions.add_parser("list", help="list tokens and clients with their scopes (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a token (by the id `list` shows) or a client (by id)")
    revoke.add_argument("id")
    return parser


def _with_store(settings: Settings, work: Any) -> Any:
    """Run `await work(store)` on the configured store, opened and closed around it."""
    from .store import open_store

    async def run() -> Any:
        store = open_store(settings.store, settings.redis_options())
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _policy(args: argparse.Namespace, command: str) -> tuple[Settings, Any]:
    """The settings and the loaded policy, for the commands that need one."""
    from .sync.policy import load_policy

    settings = _settings(args, policy=args.policy)
    if settings.policy is None:
        raise ConfigError(f"SCIM_BRIDGE_POLICY: {command} needs a policy file (--policy FILE)")
    return settings, load_policy(settings.policy)


def _with_targets(settings: Settings, policy: Any, work: Any) -> Any:
    """Run `await work(store, targets)` with the policy's targets built and closed around it."""
    from .sync.runtime import build_targets, close_targets

    async def run(store: Any) -> Any:
        targets = build_targets(policy)
        try:
            return await work(store, targets)
        finally:
            await close_targets(targets)

    return _with_store(settings, run)


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {"store": args.store, **extra}
    return load_settings(args.config, **overrides)


def configure_logging(level: str, log_format: LogFormat | None = None) -> None:
    """The bridge's log handler, JSON or text (logs.py), with every line redacted
    (scim_bridge/redaction.py): a URL with a secret in its query, a header dump or a traceback
    never reaches the log in clear."""
    from .logs import configure

    configure(level, log_format)


def serve(args: argparse.Namespace) -> int:
    from .app import create_app
    from .logs import default_format
    from .web import server

    settings = _settings(
        args,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        capture=args.capture,
        public_url=args.public_url,
        tokens=args.tokens,
        delete_mode=args.delete_mode,
        policy=args.policy,
    )
    configure_logging(settings.log_level, settings.log_format)
    as_json = (settings.log_format or default_format()) == "json"  # a collector reads every line
    generated = None
    unconfigured = not settings.tokens and not settings.basic_users and not settings.api_keys
    if unconfigured and not as_json:
        # Secure by default, and still zero set-up on a terminal: a token valid for this process
        # only, shown on the operator's terminal. Never in JSON logs: they go to a collector, and a
        # secret must not (the container takes stored credentials or SCIM_BRIDGE_TOKENS).
        generated = "sbt_" + secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"tokens": [generated]})
    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}/scim/v2"
    from .redaction import redact_text  # the store URL may hold a Redis password; a terminal is a log too

    banner = [(logging.INFO, f"SCIM base URL {url}  (store {redact_text(settings.store)})")]
    if generated:
        banner.append((logging.WARNING, f"no SCIM_BRIDGE_TOKENS set; bearer token for this run: {generated}"))
    elif unconfigured:
        banner.append(
            (
                logging.WARNING,
                "no SCIM_BRIDGE_TOKENS, Basic users or API keys set: only credentials kept in the store "
                "open the SCIM API (scim-bridge credentials create-token NAME)",
            )
        )
    banner.append((logging.INFO, f"OAuth token URL http://{settings.host}:{settings.port}/oauth/token"))
    for level, line in banner:
        if as_json:
            logging.getLogger("scim_bridge").log(level, "%s", line)
        else:
            print(f"scim-bridge: {line}", flush=True)
    if not settings.public_url and not settings.allowed_hosts and settings.host in ("0.0.0.0", "::"):
        logging.getLogger("scim_bridge").warning(
            "SCIM_BRIDGE_PUBLIC_URL is not set: meta.location and $ref use http://localhost:%d unless the "
            "Host is in SCIM_BRIDGE_ALLOWED_HOSTS",
            settings.port,
        )
    server.run(app, settings)  # uvicorn with header limits and read deadlines (web/server.py)
    return 0


def credentials(args: argparse.Namespace) -> int:
    from .auth import scopes
    from .auth.credentials import CredentialBook

    granted = scopes.DEFAULT
    if getattr(args, "scope", None):  # validated before the store is opened
        try:
            granted = scopes.parse(args.scope)
        except scopes.ScopeError as error:
            raise ConfigError(f"--scope: {error}") from None
        if not granted:
            raise ConfigError(f"--scope: no scope given (known: {', '.join(scopes.KNOWN)})")

    async def work(store: Any) -> int:
        book = CredentialBook(store, [], {}, [])
        if args.action == "create-token":
            print(await book.create_token(args.name, granted))
        elif args.action == "create-client":
            client_id, secret = await book.create_client(args.name, granted)
            print(f"client_id={client_id}\nclient_secret={secret}")
        elif args.action == "list":
            for row in await book.list():
                print(f"{row['kind']:13} {row['id']:24} {row['name']:24} {row['created']}  {row['scopes']}")
        elif args.action == "revoke":
            if not await book.revoke(args.id):
                print(f"scim-bridge: no token or client {args.id}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}")
        return 0

    return int(_with_store(_settings(args), work))


def sandbox(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .sandbox import build_sandbox
    from .web import server

    configure_logging("warning")
    if args.policy and not Path(args.policy).is_file():
        raise ConfigError(f"--policy: no file {args.policy}")
    try:
        app, access = build_sandbox(
            args.port, args.host, args.store, policy_file=Path(args.policy) if args.policy else None
        )
    except (ValueError, OSError) as error:  # an edited policy that is not YAML
        raise ConfigError(f"--policy: {error}") from None
    if args.credentials_file:
        with open(args.credentials_file, "w") as handle:
            json.dump(access, handle, indent=2)
    hooks, cli = access["webhooks"], access["cli"]
    for line in (
        "scim-bridge sandbox: the bridge, a Cloudinary emulator and an iconik emulator on one port",
        f"  SCIM      {access['scim']['base_url']}   Authorization: Bearer {access['scim']['token']}",
        f"  admin     {access['admin']['base_url']}/queue   Authorization: Bearer {access['admin']['token']}",
        f"  console   {access['admin']['base_url'].removesuffix('/admin/api')}/console   log in with the admin token",
        f"  cloudinary {access['cloudinary']['base_url']}/_emulator/state?names=true",
        f"  iconik    {access['iconik']['base_url']}/_emulator/state?names=true",
        f"  store     {cli['store']}",
        f"  policy    {cli['policy']}" + (f"   (from {access['edited_policy']})" if access["edited_policy"] else ""),
        f"  CLI       scim-bridge explain USER --store {cli['store']} --policy {cli['policy']}",
        "            (plan, reconcile, review and provision take the same --store and --policy)",
        f"            scim-bridge audit export --person USER --store {cli['store']}",
        f'  webhooks  {hooks["cloudinary"]["url"]} (signed; POST {{"url": …}} to {hooks["cloudinary"]["notify"]})',
        f"            {hooks['iconik']['url']} (X-Bridge-Secret: {hooks['iconik']['secret']}; the emulator sends it)",
        "  sample directory (37 users, 11 groups) and "
        + ("the edited policy" if access["edited_policy"] else "sample policy")
        + " loaded; watch the targets fill",
    ):
        print(line, flush=True)
    server.run(app, Settings(host=args.host, port=args.port, log_level="warning", drain_seconds=0))
    return 0


def plan_changes(args: argparse.Namespace) -> int:
    from collections import Counter

    from .sync.plan import plan

    settings, policy = _policy(args, "plan")
    progress = Progress("plan")
    progress("reading the directory and the ID map…")
    changes = _with_store(settings, lambda store: plan(store, policy))
    progress.done()
    for change in changes:
        print(change)
    counts = Counter((c.target, c.action) for c in changes)
    summary = ", ".join(f"{t} {a} {n}" for (t, a), n in sorted(counts.items())) or "nothing to change"
    print(f"plan: {len(changes)} change(s): {summary}")
    return 0


def explain_user(args: argparse.Namespace) -> int:
    from .sync.explain import explain

    settings, policy = _policy(args, "explain")
    result = _with_store(settings, lambda store: explain(store, policy, args.user))
    if result is None:
        print(f"explain: no user {args.user!r} in the directory", file=sys.stderr)
        return 1
    print(json.dumps(result.as_json(), indent=2) if args.json else "\n".join(result.lines()))
    return 0


def provision(args: argparse.Namespace) -> int:
    """Exit 0: done (or dry run); 1: a target failed, or no such user or group."""
    from .audit.trail import AuditTrail
    from .sync.engine import SyncEngine
    from .sync.provision import Provisioner, ProvisionError, lines
    from .targets.http import CALL_OBSERVER

    settings, policy = _policy(args, "provision")

    async def work(store: Any, targets: Any) -> int:
        trail = AuditTrail(store)
        CALL_OBSERVER.set(trail.record_target_call)  # the provision's target calls are in the audit trail
        provisioner = Provisioner(SyncEngine(store, policy, targets))
        try:
            if args.group:
                answer = await provisioner.group(args.user, args.dry_run)
            else:
                answer = await provisioner.user(args.user, args.dry_run)
        except ProvisionError as error:
            print(f"scim-bridge provision: {error.message}", file=sys.stderr)
            return 1
        finally:
            await trail.flush()
        print(json.dumps(answer, indent=1) if args.json else "\n".join(lines(answer)))
        return 1 if answer["status"] == "failure" else 0

    return int(_with_targets(settings, policy, work))


def provisioning_log(args: argparse.Namespace) -> int:
    from .audit import provisioning
    from .audit.trail import AuditTrail, parse_time

    try:
        filters = provisioning.ProvisioningFilter(
            user=args.user,
            group=args.group,
            target=args.target,
            status=args.status,
            correlation=args.correlation,
            since=parse_time(args.since),
            until=parse_time(args.until),
        )
    except ValueError as error:
        raise ConfigError(f"--since/--until: {error}") from None

    async def work(store: Any) -> int:
        trail = AuditTrail(store)
        await trail.flush()  # chain what is still pending (Redis), so the log is complete
        handle = open(args.output, "wb") if args.output else sys.stdout.buffer
        fmt = "jsonl" if args.format == "json" else args.format
        try:
            async for chunk in provisioning.export(provisioning.entries(trail, filters), fmt):
                handle.write(chunk)
        finally:
            if args.output:
                handle.close()
            else:
                handle.flush()
        return 0

    return int(_with_store(_settings(args), work))


def reconcile(args: argparse.Namespace) -> int:
    """Exit 0: in step (or repaired with --apply); 1: drift found and only reported."""
    from dataclasses import asdict

    from .sync.reconcile import Reconciler

    settings, policy = _policy(args, "reconcile")
    progress = Progress("reconcile")
    progress("listing every target…")
    drift = _with_targets(
        settings, policy, lambda store, targets: Reconciler(store, policy, targets, progress=progress).run(args.apply)
    )
    progress.done()
    if args.json:
        print(json.dumps({"applied": args.apply, "drift": [asdict(d) for d in drift]}, indent=2))
    else:
        for item in drift:
            print(item)
        print(f"reconcile: {len(drift)} difference(s){', repaired where owned' if args.apply and drift else ''}")
    return 1 if drift and not args.apply else 0


def review(args: argparse.Namespace) -> int:
    from .audit.review import build_review
    from .audit.review_report import render

    if args.section and args.format != "csv":
        raise ConfigError("--section goes with --format csv")
    settings, policy = _policy(args, "review")
    progress = Progress("review")
    built = _with_targets(
        settings,
        policy,
        lambda store, targets: build_review(
            store,
            policy,
            targets,
            args.dormant_days,
            policy_file=settings.policy,
            progress=progress,
        ),
    )
    progress.done()
    report = render(built, args.format, args.section)
    if args.output:
        with open(args.output, "wb") as handle:
            handle.write(report)
        print(f"review: written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(report)
        sys.stdout.buffer.flush()
    return 0


def replay(args: argparse.Namespace) -> int:
    from .sync.idmap import IdMap

    progress = Progress("replay")
    progress("requeueing the dead letters…")
    count = _with_store(_settings(args), lambda store: IdMap(store).replay())
    progress.done()
    print(f"requeued {count} dead letter(s)")
    return 0


def audit(args: argparse.Namespace) -> int:
    from .audit.export import export
    from .audit.trail import AuditFilter, AuditTrail, parse_time

    if args.action == "verify":
        from .audit.verification import verify_and_record

        report = _with_store(_settings(args), verify_and_record)  # the console's Overview shows it too
        print(f"scim-bridge: {report.message()}", file=sys.stdout if report.ok else sys.stderr)
        return 0 if report.ok else 1
    try:
        filters = AuditFilter(
            user=args.user,
            group=args.group,
            target=args.target,
            correlation=args.correlation,
            since=parse_time(args.since),
            until=parse_time(args.until),
        )
    except ValueError as error:
        raise ConfigError(f"--since/--until: {error}") from None

    async def work(store: Any) -> int:
        trail = AuditTrail(store)
        await trail.flush()  # chain what is still pending (Redis), so the export is complete
        if args.person:
            return await _timeline(store, trail)
        handle = open(args.output, "wb") if args.output else sys.stdout.buffer
        progress = Progress("audit export")
        if not args.output and sys.stdout.isatty():
            progress.enabled = False  # the entries themselves scroll past: a live line would mix in
        written = 0

        async def counted() -> Any:
            nonlocal written
            async for record in trail.entries(filters):
                yield record
                written += 1
                progress.count(written, "entries")

        try:
            async for chunk in export(counted(), args.format):
                handle.write(chunk)
        finally:
            progress.done()
            if args.output:
                handle.close()
            else:
                handle.flush()
        return 0

    async def _timeline(store: Any, trail: AuditTrail) -> int:
        from datetime import UTC, datetime

        from .audit import timeline

        def moment(value: float | None) -> datetime | None:
            return datetime.fromtimestamp(value, UTC) if value is not None else None

        entries = await timeline.person_timeline(
            store, args.person, moment(filters.since), moment(filters.until), args.limit, trail
        )
        if not entries and await timeline.find_person(store, args.person) is None:
            print(f"scim-bridge audit: no user {args.person!r} in the directory or the audit trail", file=sys.stderr)
            return 1
        if args.format == "csv":
            body = timeline.csv_text(entries).encode()
        else:
            body = b"".join(json.dumps(e.as_json()).encode() + b"\n" for e in entries)
        if args.output:
            with open(args.output, "wb") as handle:
                handle.write(body)
        else:
            sys.stdout.buffer.write(body)
            sys.stdout.buffer.flush()
        return 0

    return int(_with_store(_settings(args), work))


def emulate(args: argparse.Namespace) -> int:
    """Serve one emulator and print how to reach it, for anyone testing their own integration."""
    import uvicorn

    url = f"http://{args.host}:{args.port}"
    if args.target == "cloudinary":
        from .emulators import cloudinary

        state = cloudinary.CloudinaryState()
        app = cloudinary.build(state, cloudinary.CloudinarySwitches(hourly_limit=int(args.rate)))
        print(f"cloudinary emulator: {url}/v1_1/provisioning/accounts/{state.account_id}/users", flush=True)
        print(f"  HTTP Basic  key={state.key}  secret={state.secret}", flush=True)
    else:
        from .emulators import iconik

        state_i = iconik.IconikState()
        app = iconik.build(state_i, iconik.IconikSwitches(rate_per_second=args.rate))
        print(f"iconik emulator: {url}/API/users/v1/users/", flush=True)
        print(f"  App-ID: {state_i.app_id}  Auth-Token: {state_i.auth_token}", flush=True)
    print(f"  faults: GET/PUT {url}/_emulator/faults   state: GET {url}/_emulator/state", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "emulate":
            return emulate(args)
        if args.command == "sandbox":
            return sandbox(args)
        if args.command == "audit":
            return audit(args)
        if args.command == "replay":
            return replay(args)
        if args.command == "held":
            from .cli_held import held

            return held(args)
        if args.command == "plan":
            return plan_changes(args)
        if args.command == "explain":
            return explain_user(args)
        if args.command == "provision":
            return provision(args)
        if args.command == "provisioning":
            return provisioning_log(args)
        if args.command == "reconcile":
            return reconcile(args)
        if args.command == "review":
            return review(args)
        return credentials(args)
    except (ConfigError, PolicyError) as error:
        print(f"scim-bridge: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
