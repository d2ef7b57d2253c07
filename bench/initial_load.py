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
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from tests.live import free_port  # noqa: E402

TOKEN = "bench-token"
ADMIN_TOKEN = "bench-admin-token"
#: --adoption-ttl: the bridge started with the snapshot's lifetime changed, and nothing else
ADOPTION_TTL = (
    "import sys; from scim_bridge.targets.adoption import AdoptionIndex as A; i = A.__init__; "
    "A.__init__ = lambda self, *a, **k: (i(self, *a, **k), setattr(self, 'ttl', {ttl}))[0]; "
    "from scim_bridge.cli import main; sys.exit(main())"
)
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
    parser.add_argument(
        "--scim-replicas",
        action="store_true",
        help="instead: SCIM POST /Users throughput of one against two bridge processes on one Redis",
    )
    parser.add_argument("--duration", type=int, default=10, help="--scim-replicas: seconds per cell")
    parser.add_argument(
        "--trace",
        default=None,
        help="a JSON-lines file: the bridge runs under bench/trace_bridge.py (a timeline per revocation) "
        "and each leaver's measured latency is written there too",
    )
    parser.add_argument(
        "--timeline",
        default=None,
        help="a JSON-lines file: both emulators' call and account counts once a second, and the phases "
        "(push done, leavers done, drained), to see where the run fell behind the rate limits",
    )
    parser.add_argument(
        "--adoption-ttl",
        type=float,
        default=None,
        help="diagnosis: the translators' account snapshot lives this many seconds (targets/adoption.py; "
        "900 as shipped), so that a short run refreshes it as a 100,000-user one does",
    )
    args = parser.parse_args()
    if args.adoption_ttl is not None and args.trace:
        parser.error("--adoption-ttl and --trace each start the bridge their own way: one at a time")
    if args.scim_replicas:
        return scim_replicas(args.duration)
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
    # Each emulator in its own process (bench/emulator_process.py): the bridge's pace, not theirs.
    cld = Emulator("cloudinary", CLOUDINARY_RATE, workdir)
    ico = Emulator("iconik", ICONIK_RATE, workdir)
    with cld, ico:
        (workdir / "policy.yml").write_text(
            yaml.safe_dump(
                {
                    "targets": {
                        "cloudinary": {
                            "enabled": True,
                            "base_url": cld.url,
                            "rate": CLOUDINARY_RATE,
                            "credentials_file": str(cld.credentials),
                        },
                        "iconik": {
                            "enabled": True,
                            "base_url": ico.url,
                            "rate": ICONIK_RATE,
                            "credentials_file": str(ico.credentials),
                        },
                    },
                    "derived_groups": ["dept-{department}"],
                    # the leavers stay below the brake's thresholds: it is on, and never engages
                    "safety": {
                        "deprovision": {
                            "enabled": brake,
                            "max_count": max(50, args.revocations + 1),
                            "max_share": min(100.0, max(5.0, 100 * (args.revocations + 1) / args.users)),
                        }
                    },
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
            "SCIM_BRIDGE_ADMIN_TOKENS": ADMIN_TOKEN,  # one /metrics scrape at the end (429s, retries)
        }
        if args.trace:
            env["SCIM_BRIDGE_TRACE_FILE"] = args.trace
        launcher = [str(ROOT / "bench" / "trace_bridge.py")] if args.trace else ["-m", "scim_bridge"]
        if args.adoption_ttl is not None:
            launcher = ["-c", ADOPTION_TTL.format(ttl=args.adoption_ttl)]
        bridge = subprocess.Popen(
            [
                sys.executable,
                *launcher,
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
            timeline = Timeline(args.timeline, started, cld, ico)
            ids = push_directory(scim, args.users, args.groups)
            pushed = time.monotonic() - started
            timeline.phase("pushed")
            latencies = revoke_during_drain(scim, ids, cld, ico, args.revocations, args.revocation_interval, args.trace)
            timeline.phase("leavers done")
            total = wait_until_drained(cld, ico, args.users, port) - started
            timeline.phase("drained")
            timeline.stop()
            rss_mb = peak_rss_mb(bridge.pid)
            scraped = scrape(port)
        finally:
            bridge.terminate()
            bridge.wait(timeout=30)
        cld_calls, ico_calls = cld.counts()["calls"], ico.counts()["calls"]
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
        p99 = latencies[math.ceil(len(latencies) * 0.99) - 1]  # nearest rank: of 50, the slowest
        print(
            f"  revocation latency over {len(latencies)} leavers during the drain: "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (aim p99 ≤ 250 ms)"
        )
    print(f"  bridge peak RSS {rss_mb:.0f} MB")
    print("  from the bridge's /metrics: " + ", ".join(f"{name} {scraped.get(key, 0):.0f}" for name, key in SCRAPED))
    return {"ratio": total / floor, "p99": p99 * 1000}


def scim_replicas(duration: int) -> int:
    """POST /Users (wrk, 8 connections in all) against one bridge process, then two on the same
    Redis (two wrk processes of 4 connections at once, one per bridge), in one run."""
    import front_door  # bench/: the wrk driver and the bridge command line

    from tests.redis_server import RedisServer

    redis = RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="scim-replicas-"))
    env = {"SCIM_BRIDGE_TOKENS": TOKEN}
    rates: dict[int, float] = {}
    try:
        for count in (1, 2, 1, 2):  # alternating, twice
            bridges = [
                front_door.Server(f"bridge{n}", front_door.bridge(redis.url), "/scim/v2", env) for n in range(count)
            ]
            for server in bridges:
                server.start()
            try:
                connections = 8 // count

                def post_load(server: front_door.Server, connections: int = connections) -> front_door.Result:
                    script = front_door.lua_script(server, front_door.POST_LUA, None, workdir)
                    front_door.run_wrk(server, script, 2, connections)  # warm-up
                    return front_door.run_wrk(server, script, duration, connections)

                with ThreadPoolExecutor(count) as pool:
                    results = list(pool.map(post_load, bridges))
            finally:
                for server in bridges:
                    server.stop()
            total = sum(r.rps for r in results)
            print(f"  {count} bridge process(es) on one Redis: POST /Users {total:,.0f}/s")
            rates[count] = max(rates.get(count, 0.0), total)
    finally:
        redis.stop()
    print(f"\nSCIM POST /Users, two processes ÷ one (best of two each, same run): {rates[2] / rates[1]:.2f}")
    return 0


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


class Emulator:
    """An emulator in a child process (bench/emulator_process.py), read through its /_bench/ routes."""

    def __init__(self, kind: str, rate: float, workdir: Path) -> None:
        self.kind, self.port = kind, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.credentials = workdir / f"{kind}.json"
        command = [sys.executable, str(ROOT / "bench" / "emulator_process.py"), kind, "--port", str(self.port)]
        command += ["--rate", str(rate), "--credentials", str(self.credentials)]
        self.process = subprocess.Popen(command, cwd=ROOT)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def __enter__(self) -> Emulator:
        for _ in range(300):
            try:
                self.counts()
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"the {self.kind} emulator did not start")

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=30)

    def reader(self) -> httpx.Client:
        """A client of its own (httpx clients are not shared across threads here)."""
        return httpx.Client(base_url=self.url, timeout=30)

    def counts(self) -> dict[str, int]:
        return self.client.get("/_bench/counts").json()  # type: ignore[no-any-return]

    def active_of(self, emails: list[str]) -> set[str]:
        return set(self.client.post("/_bench/active", json=emails).json())

    def active(self, email: str) -> bool | None:
        return self.client.get("/_bench/active", params={"email": email}).json()["active"]  # type: ignore[no-any-return]


def revoke_during_drain(
    scim: httpx.Client, ids: list[str], cld: Emulator, ico: Emulator, count: int, interval: float, trace: str | None
) -> list[float]:
    """Disable provisioned users one by one while the backlog drains; time each until both
    targets show the account disabled (polled every 5 ms through each emulator's /_bench/ route,
    outside its rate limit)."""
    rng, latencies = random.Random(1), []
    number = {i: n for n, i in enumerate(ids)}
    revoked: set[str] = set()
    while len(latencies) < count:
        if cld.counts()["users"] >= len(ids) - 10 and ico.counts()["users"] >= len(ids) - 10:
            break  # the backlog is (nearly) gone: later revocations would not measure "during the drain"
        sample = [i for i in rng.sample(ids, min(len(ids), 2000)) if i not in revoked]
        emails = [f"user{number[i]}@example.com" for i in sample]
        both = cld.active_of(emails) & ico.active_of(emails)
        candidates = [i for i, email in zip(sample, emails, strict=True) if email in both]
        if not candidates:
            time.sleep(0.2)
            continue
        user_id = candidates[0]
        revoked.add(user_id)
        email = f"user{number[user_id]}@example.com"
        scim.patch(
            f"/Users/{user_id}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        acknowledged = time.monotonic()
        cld_done = ico_done = 0.0
        while True:
            cld_done = cld_done or (cld.active(email) is False and time.monotonic() - acknowledged)
            ico_done = ico_done or (ico.active(email) is False and time.monotonic() - acknowledged)
            if cld_done and ico_done:
                latencies.append(time.monotonic() - acknowledged)
                if trace:
                    with open(trace, "a") as out:
                        seen = {"cloudinary": round(cld_done * 1000, 1), "iconik": round(ico_done * 1000, 1)}
                        out.write(json.dumps({"leaver": user_id, "latency_ms": latencies[-1] * 1000, "seen": seen}))
                        out.write("\n")
                break
            if time.monotonic() - acknowledged > 60:
                latencies.append(60.0)
                break
            time.sleep(0.005)
        time.sleep(interval)
    return latencies


def wait_until_drained(cld: Emulator, ico: Emulator, users: int, port: int) -> float:
    """When the last target call was seen (time.monotonic()), once every account exists, the
    bridge's queue is empty and no call has come for 2 s: those 2 s confirm the end and are not
    the bridge's time. Without the queue, a pause of 2 s between the last joiner and the group
    entries' member re-syncs (their team adds) ended the run before those calls."""
    last, stable, changed, polls, empty = -1, 0, time.monotonic(), 0, False
    while True:
        c, i = cld.counts(), ico.counts()
        calls = c["calls"] + i["calls"]
        done = c["users"] >= users and i["users"] >= users + 1
        if done and polls % 10 == 0:  # once a second: /metrics reads the store
            empty = queue_depth(port) == 0
        polls += 1
        if calls == last:
            stable += 1
        else:
            stable, changed = 0, time.monotonic()
        if done and empty and stable >= 20:  # no target call for 2 s after every account exists
            return changed
        last = calls
        time.sleep(0.1)


def queue_depth(port: int) -> float:
    """Entries in the bridge's sync queue, every lane, leased ones included (from /metrics)."""
    text = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    ).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("scim_bridge_queue_depth{")
    )


#: (what the summary line calls it, the Prometheus series summed over its other labels)
SCRAPED = [
    ("cloudinary 429s", 'scim_bridge_target_requests_total{target="cloudinary",status="429"}'),
    ("iconik 429s", 'scim_bridge_target_requests_total{target="iconik",status="429"}'),
    ("in-place retries", "scim_bridge_target_retries_total"),
    ("entries deferred", "scim_bridge_sync_retries_total"),
    ("cloudinary limiter wait s", 'scim_bridge_target_rate_limit_wait_seconds_total{target="cloudinary"}'),
    ("iconik limiter wait s", 'scim_bridge_target_rate_limit_wait_seconds_total{target="iconik"}'),
]


def scrape(port: int) -> dict[str, float]:
    """The SCRAPED series from one GET /metrics, each summed over the labels it does not name."""
    text = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    ).text
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        pairs = dict(p.split("=", 1) for p in labels.rstrip("}").split(",") if "=" in p)
        for _, key in SCRAPED:
            want, _, want_labels = key.partition("{")
            wanted = dict(p.split("=", 1) for p in want_labels.rstrip("}").split(",") if "=" in p)
            if name == want and all(pairs.get(k) == v for k, v in wanted.items()):
                sums[key] = sums.get(key, 0.0) + float(value)
    return sums


class Timeline:
    """Once a second, both emulators' call and account counts (read outside their rate limits),
    written as JSON lines with the seconds since the start; `phase` marks a moment. Off without
    a file."""

    def __init__(self, path: str | None, started: float, cld: Emulator, ico: Emulator) -> None:
        self.started, self.out = started, open(path, "a", buffering=1) if path else None
        self.cld = Emulator.reader(cld)
        self.ico = Emulator.reader(ico)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if self.out:
            self._thread.start()

    def _write(self, record: dict[str, object]) -> None:
        if self.out:
            self.out.write(json.dumps({"t": round(time.monotonic() - self.started, 2), **record}) + "\n")

    def phase(self, name: str) -> None:
        self._write({"phase": name})

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            c, i = self.cld.get("/_bench/counts").json(), self.ico.get("/_bench/counts").json()
            self._write({"cld": c["calls"], "ico": i["calls"], "cld_users": c["users"], "ico_users": i["users"]})

    def stop(self) -> None:
        self._stop.set()
        if self.out:
            self._thread.join()
            self.out.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
