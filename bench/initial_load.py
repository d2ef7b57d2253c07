"""Initial load and revocation latency: N users and M groups pushed through SCIM, synced into both
emulators with their rate limits on, while leavers are disabled during the drain.

Prints the total time against the rate-limit floor (calls made ÷ the tighter target's allowed
rate), the revocation latency from the SCIM 2xx to the emulator showing the user disabled
(p50/p99), and the bridge's peak RSS. Limits: iconik's documented ≈50 requests/s (token bucket,
burst 1000 per 20 s); Cloudinary's provisioning limit is undocumented, so it is a choice:
20 requests/s (72,000/hour) by default, `--cloudinary-rate` to change it.

    python bench/initial_load.py                    # 100,000 users, 2,000 groups: hours
    python bench/initial_load.py --users 2000 --groups 40
    python bench/initial_load.py --cloudinary-rate 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scim_bridge.emulators import cloudinary, iconik  # noqa: E402
from tests.emulators.live import LiveApp  # noqa: E402
from tests.live import free_port  # noqa: E402

TOKEN = "bench-token"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DEPARTMENTS = ["Marketing", "Product", "Legal", "Brand", "Post Production"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--revocations", type=int, default=50)
    parser.add_argument("--store", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--revocation-interval", type=float, default=0.5, help="seconds between leavers")
    parser.add_argument("--iconik-rate", type=float, default=50.0, help="requests/s (documented: ≈50)")
    parser.add_argument("--cloudinary-rate", type=float, default=20.0, help="requests/s (undocumented: a choice)")
    parser.add_argument(
        "--brake",
        choices=["on", "off", "both"],
        default="on",
        help="the deprovision brake (policy safety.deprovision); both: one run each, compared",
    )
    args = parser.parse_args()
    runs = {"on": [True], "off": [False], "both": [False, True]}[args.brake]
    results = [run(args, brake) for brake in runs]
    if len(results) == 2:
        off, on = results
        print("\nbrake on ÷ brake off (same run; the leavers stay below the brake's threshold):")
        print(f"  total ÷ floor   {on['ratio']:.3f} ÷ {off['ratio']:.3f} = {on['ratio'] / off['ratio']:.3f}")
        if on["p99"] and off["p99"]:
            print(f"  revocation p99  {on['p99']:.0f} ms ÷ {off['p99']:.0f} ms = {on['p99'] / off['p99']:.2f}")
    return 0


def run(args: argparse.Namespace, brake: bool) -> dict[str, float]:
    ICONIK_RATE, CLOUDINARY_RATE = args.iconik_rate, args.cloudinary_rate
    workdir = Path(tempfile.mkdtemp(prefix="scim-load-"))
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    cld_app = cloudinary.build(cld_state, cloudinary.CloudinarySwitches(hourly_limit=int(CLOUDINARY_RATE * 3600)))
    ico_app = iconik.build(ico_state, iconik.IconikSwitches(rate_per_second=ICONIK_RATE, burst=1000))
    with LiveApp(cld_app) as cld, LiveApp(ico_app) as ico:
        (workdir / "cld.json").write_text(
            json.dumps({"account_id": cld_state.account_id, "key": cld_state.key, "secret": cld_state.secret})
        )
        (workdir / "ico.json").write_text(json.dumps({"app_id": ico_state.app_id, "auth_token": ico_state.auth_token}))
        (workdir / "policy.yml").write_text(
            yaml.safe_dump(
                {
                    "targets": {
                        "cloudinary": {
                            "enabled": True,
                            "base_url": cld.url,
                            "rate": CLOUDINARY_RATE,
                            "credentials_file": str(workdir / "cld.json"),
                        },
                        "iconik": {
                            "enabled": True,
                            "base_url": ico.url,
                            "rate": ICONIK_RATE,
                            "credentials_file": str(workdir / "ico.json"),
                        },
                    },
                    "derived_groups": ["dept-{department}"],
                    "safety": {"deprovision": {"enabled": brake}},
                }
            )
        )
        port = free_port()
        env = {
            **os.environ,
            "SCIM_BRIDGE_TOKENS": TOKEN,
            "SCIM_BRIDGE_POLICY": str(workdir / "policy.yml"),
            "SCIM_BRIDGE_SYNC_CONCURRENCY": "16",
            "SCIM_BRIDGE_LOG_LEVEL": "warning",
        }
        bridge = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scim_bridge",
                "serve",
                "--port",
                str(port),
                "--store",
                args.store or f"sqlite:///{workdir}/load.db",
            ],
            env=env,
            cwd=ROOT,
        )
        scim = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/scim/v2", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300
        )
        try:
            for _ in range(200):
                try:
                    scim.get("/ServiceProviderConfig")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            started = time.monotonic()
            ids = push_directory(scim, args.users, args.groups)
            pushed = time.monotonic() - started
            latencies = revoke_during_drain(scim, ids, cld_state, ico_state, args.revocations, args.revocation_interval)
            wait_until_drained(cld_state, ico_state, args.users)
            total = time.monotonic() - started
            rss_mb = peak_rss_mb(bridge.pid)
        finally:
            bridge.terminate()
            bridge.wait(timeout=30)
    cld_calls, ico_calls = len(cld_state.calls), len(ico_state.calls)
    floor = max(cld_calls / CLOUDINARY_RATE, ico_calls / ICONIK_RATE)
    print(
        f"\ninitial load: {args.users} users, {args.groups} groups, brake {'on' if brake else 'off'} "
        f"(SCIM push took {pushed:.1f} s)"
    )
    print(
        f"  target calls: cloudinary {cld_calls} at ≤{CLOUDINARY_RATE:.0f}/s (chosen), "
        f"iconik {ico_calls} at ≤{ICONIK_RATE:.0f}/s (documented)"
    )
    print(f"  total {total:.1f} s; rate-limit floor {floor:.1f} s; total ÷ floor {total / floor:.3f} (aim ≤ 1.05)")
    p99 = 0.0
    if latencies:
        latencies.sort()
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
        print(
            f"  revocation latency over {len(latencies)} leavers during the drain: "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (aim p99 ≤ 1000 ms)"
        )
    print(f"  bridge peak RSS {rss_mb:.0f} MB")
    return {"ratio": total / floor, "p99": p99 * 1000}


def push_directory(scim: httpx.Client, users: int, groups: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, users, 1000):
        operations = [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": f"u{i}",
                "data": {
                    "schemas": [USER, ENTERPRISE],
                    "userName": f"user{i}@example.com",
                    "active": True,
                    "name": {"givenName": f"Given{i}", "familyName": "Load"},
                    "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
                    ENTERPRISE: {"department": DEPARTMENTS[i % len(DEPARTMENTS)]},
                },
            }
            for i in range(start, min(start + 1000, users))
        ]
        response = scim.post(
            "/Bulk", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations}
        )
        ids += [op["location"].rsplit("/", 1)[1] for op in response.json()["Operations"]]
    per_group = max(1, users // max(1, groups))
    for g in range(groups):
        members = ids[g * per_group : (g + 1) * per_group]
        scim.post(
            "/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": f"Team {g}",
                "members": [{"value": m} for m in members],
            },
        )
    return ids


def revoke_during_drain(
    scim: httpx.Client,
    ids: list[str],
    cld: cloudinary.CloudinaryState,
    ico: iconik.IconikState,
    count: int,
    interval: float,
) -> list[float]:
    """Disable provisioned users one by one while the backlog drains; time each until both
    targets show the account disabled. Reads the emulators' tables sparingly: they live in this
    process, and scanning 100,000 accounts every few milliseconds would slow them down."""
    rng, latencies = random.Random(1), []
    number = {i: n for n, i in enumerate(ids)}
    revoked: set[str] = set()
    while len(latencies) < count:
        cld_by_email = {u["email"]: u for u in list(cld.users.values())}
        ico_by_email = {u["email"]: u for u in list(ico.users.values())}
        if len(cld_by_email) >= len(ids) - 10 and len(ico_by_email) >= len(ids) - 10:
            break  # the backlog is (nearly) gone: later revocations would not measure "during the drain"
        candidates = [
            i
            for i in rng.sample(ids, min(len(ids), 2000))
            if i not in revoked
            and cld_by_email.get(f"user{number[i]}@example.com", {}).get("enabled")
            and ico_by_email.get(f"user{number[i]}@example.com", {}).get("status") == "ACTIVE"
        ]
        if not candidates:
            time.sleep(0.2)
            continue
        user_id = candidates[0]
        revoked.add(user_id)
        email = f"user{number[user_id]}@example.com"
        c, i = cld_by_email[email], ico_by_email[email]  # the emulators update these dicts in place
        scim.patch(
            f"/Users/{user_id}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        acknowledged = time.monotonic()
        while True:
            if not c["enabled"] and i["status"] != "ACTIVE":
                latencies.append(time.monotonic() - acknowledged)
                break
            if time.monotonic() - acknowledged > 60:
                latencies.append(60.0)
                break
            time.sleep(0.005)
        time.sleep(interval)
    return latencies


def wait_until_drained(cld: cloudinary.CloudinaryState, ico: iconik.IconikState, users: int) -> None:
    last, stable = -1, 0
    while True:
        calls = len(cld.calls) + len(ico.calls)
        done = len(cld.users) >= users and len(ico.users) >= users + 1
        stable = stable + 1 if calls == last else 0
        if done and stable >= 20:  # no target call for 2 s after every account exists
            return
        last = calls
        time.sleep(0.1)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # emulator threads end with the process
    sys.exit(main())
