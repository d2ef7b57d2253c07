"""`scim-bridge plan` over a large directory: N users and M groups (synthetic, generated in the
run) in a SQLite store whose ID map says a first policy is applied to both targets; then `plan`
with a second policy (a role rule, a folder grant and a workspace changed), as the CLI runs it, in
its own process. Prints the directory's size, the time `plan` took, its peak memory (the child's
max RSS, from wait4; the seeding runs in another child, so the parent's size does not leak in),
the number of changes it found, and the same `plan` against the policy that is applied (no
change expected) as the baseline measured in the same run.

    python bench/plan.py                       # 100,000 users, 2,000 groups (goal: ≤ 60 s)
    python bench/plan.py --users 5000 --groups 100

The directory: departments and divisions spread over the users, 3 % contractors (external by a
userType guardrail), each user in 1–4 of the groups, 5 % of the groups project teams. The ID map is
written as the engine writes it (applied account, target groups, projects), from the same
desired-access model (sync/desired.py), with made-up target ids: `plan` reads only the store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scim_bridge.store import Write, open_store  # noqa: E402
from scim_bridge.sync.desired import AccessModel  # noqa: E402
from scim_bridge.sync.policy import Policy  # noqa: E402

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DEPARTMENTS = ["Marketing", "Product", "Legal", "Brand", "Post Production", "Sales", "Finance", "Engineering"]
DIVISIONS = ["EMEA", "APAC", "AMER", "LATAM"]
BATCH = 500  # concurrent writes per round: the SQLite writer commits them together


def policy(changed: bool) -> dict[str, Any]:
    """The applied policy, or the one to deploy (changed=True)."""
    folders = [
        {"path": f"campaigns/{d.lower()}", "grants": [{"group": f"Marketing {d}", "role": "contributor"}]}
        for d in DIVISIONS
    ]
    folders.append({"path": "masters", "internal": True, "grants": [{"group": "Global Brand", "role": "manager"}]})
    folders.append({"path": "agencies/acme", "grants": [{"group": "Agency Acme", "role": "contributor"}]})
    if changed:
        folders[0]["grants"][0]["role"] = "viewer"
    return {
        "targets": {"cloudinary": {"enabled": True}, "iconik": {"enabled": True}},
        "roles": [
            {"when": {"group": "Legal Reviewers"}, "cloudinary": "media_library_admin", "iconik": "STANDARD"},
            {"when": {"group": "Global Brand"}, "cloudinary": "media_library_admin", "iconik": "STANDARD"},
            {
                "when": {"attribute": {"department": "Engineering" if changed else "Post Production"}},
                "iconik": "POWER",
            },
        ],
        "groups": {"include": ["*"], "exclude": ["project-*"]},
        "derived_groups": ["dept-{department}"],
        "deprovision": "strip_groups",
        "guardrails": {"external": [{"attribute": {"userType": "Contractor"}}, {"group": "Agency *"}]},
        "access": {
            "cloudinary": {"folders": folders},
            "iconik": {
                "collections": [
                    {
                        "title": "Brand Masters",
                        "internal": True,
                        "grants": [{"group": "Global Brand", "permissions": ["read", "write"]}],
                    },
                    {"title": "Agency Uploads", "grants": [{"group": "Agency Acme", "permissions": ["read", "write"]}]},
                    {"title": "Regions"},
                ],
                "workspaces": [
                    {
                        "attribute": "division",
                        "group": "region-{division}",
                        "title": "Region {division}",
                        "parent": "Regions",
                        "permissions": ["read", "write"] if changed else ["read"],
                    }
                ],
                "projects": {"groups": ["project-*"]},
            },
            "external": {"folders": ["agencies/*"], "collections": ["Agency *"]},
        },
    }


def directory(users: int, groups: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    people = []
    for i in range(users):
        contractor = rng.random() < 0.03
        people.append(
            {
                "schemas": [USER, ENTERPRISE],
                "id": f"u{i:07d}",
                "userName": f"user{i}@{'agency.example' if contractor else 'example.com'}",
                "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
                "displayName": f"User {i}",
                "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
                "active": rng.random() > 0.02,
                "userType": "Contractor" if contractor else "Employee",
                ENTERPRISE: {"department": rng.choice(DEPARTMENTS), "division": rng.choice(DIVISIONS)},
            }
        )
    named = [f"Marketing {d}" for d in DIVISIONS] + ["Global Brand", "Legal Reviewers", "Agency Acme"]
    names = named + [
        f"project-{i}" if i % 20 == 0 else f"Team {i}" for i in range(groups - len(named))
    ]  # 5 % project teams
    members: dict[str, list[dict[str, str]]] = {n: [] for n in names}
    for person in people:
        for name in rng.sample(names, rng.randint(1, 4)):
            members[name].append({"value": person["id"]})
    teams = [
        {"schemas": [GROUP], "id": f"g{i:05d}", "displayName": n, "members": members[n]} for i, n in enumerate(names)
    ]
    return people, teams


async def seed(url: str, users: int, groups: int) -> None:
    people, teams = directory(users, groups, random.Random(7))
    store = open_store(url)
    await store.open()
    try:
        writes = [Write("User", p["id"], orjson.dumps(p), lane=None) for p in people]
        writes += [Write("Group", g["id"], orjson.dumps(g), lane=None) for g in teams]
        for start in range(0, len(writes), BATCH):
            await asyncio.gather(*(store.create(w) for w in writes[start : start + BATCH]))
        # the ID map as the engine leaves it once the first policy is applied
        model = AccessModel(Policy.model_validate(policy(changed=False)))
        member_of: dict[str, dict[str, str]] = {}
        for g in teams:
            for m in g["members"]:
                member_of.setdefault(m["value"], {})[g["id"]] = g["displayName"]
        puts: list[tuple[str, str, bytes]] = []
        for target in model.targets:
            wanted: dict[str, str] = {}
            for p in people:
                desired = model.for_target(target, p, member_of.get(p["id"], {})).desired_user()
                if desired.account is None or not desired.account.enabled:
                    continue
                wanted.update(desired.groups)
                entry = {
                    "id": f"{target}-{p['id']}",
                    "applied": asdict(desired.account),
                    "groups": {k: f"tg-{k}" for k in desired.groups},
                    "group_names": desired.groups,
                    "projects": {k: f"tp-{k}" for k in desired.projects},
                    "status": "synced",
                }
                puts.append((f"idmap:{target}", f"User/{p['id']}", orjson.dumps(entry)))
            for key, name in wanted.items():
                group_entry = orjson.dumps({"id": f"tg-{key}", "name": name, "status": "synced"})
                puts.append((f"idmap:{target}", f"Group/{key}", group_entry))
            # the grants run's record: resolved folders / collections and the grants last applied
            applied: dict[str, dict[str, list[str]]] = {}
            resources = set(model.policy.access.section(target).resources())
            for name in set(wanted.values()):
                for grant in model.grants_of(target, name, derived=True):
                    if grant.kind in ("folder", "collection"):
                        resources.add((grant.kind, grant.resource))
                        applied.setdefault(grant.resource, {})[name] = sorted(grant.rights)
            for kind, resource in resources:
                puts.append(("access", f"{target}:{kind}:{resource}", f"id-{resource}".encode()))
            puts.append(("access", f"{target}:applied", orjson.dumps(applied)))
        for start in range(0, len(puts), BATCH):
            await asyncio.gather(*(store.kv_put(*put) for put in puts[start : start + BATCH]))
    finally:
        await store.close()


def run_plan(url: str, policy_file: Path) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MiB, changes, summary line) of `scim-bridge plan` in its own process."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "scim_bridge", "plan", "--store", url, "--policy", str(policy_file)],
            stdout=out,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"plan failed: {child.stderr.read().decode() if child.stderr else status}")
        out.seek(0)
        lines = out.read().decode().splitlines()
    return seconds, usage.ru_maxrss / 1024, len(lines) - 1, lines[-1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--keep", help="seed this SQLite file and keep it (for a profiler)")
    parser.add_argument("--seed-only", help=argparse.SUPPRESS)  # the seeding child: URL
    parser.add_argument("--goal", type=float, default=60.0, help="seconds plan may take at 100,000 users")
    args = parser.parse_args()
    if args.seed_only:
        asyncio.run(seed(args.seed_only, args.users, args.groups))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{args.keep or tmp + '/plan.db'}"
        started = time.perf_counter()
        # Seeded in a child of its own: a child's max RSS starts from its parent's (Linux keeps it
        # across fork and exec), so this process stays small for the plan children it measures.
        subprocess.run(
            [sys.executable, __file__, "--seed-only", url, "--users", str(args.users), "--groups", str(args.groups)],
            check=True,
        )
        print(f"seeded {args.users:,} users, {args.groups:,} groups in {time.perf_counter() - started:.1f} s")
        applied, deploy = Path(tmp) / "applied.yml", Path(tmp) / "deploy.yml"
        applied.write_text(yaml.safe_dump(policy(changed=False)))
        deploy.write_text(yaml.safe_dump(policy(changed=True)))
        base_s, base_mb, base_n, _ = run_plan(url, applied)
        print(f"plan, policy as applied : {base_s:6.1f} s  peak {base_mb:6.0f} MiB  {base_n:,} change(s)")
        plan_s, plan_mb, plan_n, summary = run_plan(url, deploy)
        print(f"plan, policy to deploy  : {plan_s:6.1f} s  peak {plan_mb:6.0f} MiB  {plan_n:,} change(s)")
        print(f"  {summary}")
        per_user = plan_s / max(args.users, 1) * 1e6
        print(f"  {per_user:.0f} µs per user; ratio deploy ÷ as-applied {plan_s / base_s:.2f}")
        verdict = "within" if plan_s <= args.goal * args.users / 100_000 else "OVER"
        print(f"  {verdict} the goal ({args.goal:.0f} s at 100,000 users, scaled to {args.users:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
