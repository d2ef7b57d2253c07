"""Stall benchmark: does one expensive request hold up everyone else?

At `--users` stored users (100,000 by default, seeded straight into SQLite in the store's own
layout, as eq_lookup.py does), the bridge (`scim-bridge serve`, its own process) is probed with
`GET /health` every `--probe-interval` seconds (10 ms; a probe held up longer also counts for the
probes it held up, as HdrHistogram corrects coordinated omission) in three phases of `--seconds`:

  idle    nothing else runs: the baseline /health latency of this run;
  filter  `--clients` clients send, back to back, the worst filter the bridge accepts: a long `or`
          of terms on attributes that have no index (so every user is read and every term
          evaluated), through POST /Users/.search (no URL length limit): `--filter-terms` terms
          (flat), or by default the most terms the bridge's own filter parser accepts on this
          code (today: 4096 characters, 32 levels, and an `and`/`or`/`not` counts ¼ level),
          flat or in balanced parentheses, whichever holds more, then as many of those terms as
          the running server accepts (its cost bound: terms × users scanned), found by asking it;
  bulk    the same clients send, back to back, a Bulk request of `--bulk-ops` POSTs whose bulkId
          references resolve in reverse order (operation i names operation i+1's bulkId as its
          manager: only the last can run first).

It prints, per phase, the heavy requests done, their median time, the server's CPU (user + system,
from /proc) per heavy request, /health p50/p99/max and p99 ÷ idle p99. The aim: /health p99 ≤ 50 ms
while the heavy requests run. A --filter-terms filter the server refuses is reported with its
answer.

    python bench/stall.py [--users 100000] [--filter-terms N] [--bulk-ops 1000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]
from eq_lookup import seed_sqlite  # noqa: E402

from scim_bridge.scim.filters import parse as parse_filter  # noqa: E402
from tests.live import free_port  # noqa: E402

TOKEN = "bench-token"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
# attributes without an index (the indexed ones are userName, externalId, emails.value, displayName)
UNINDEXED = ('title eq "z{i}"', 'name.familyName co "z{i}"', 'nickName sw "z{i}"', 'emails.type eq "z{i}"')


def worst_filter(terms: int | None, max_chars: int) -> str:
    """`terms` or-terms; None: the most terms the bridge's own filter parser accepts (whatever its
    bounds are on this code: length, nesting, a cost bound), flat `a or b or …` or grouped as a
    balanced tree `(a or b) or (c or d)`, whichever holds more, and at most `max_chars` long."""
    if terms is not None:
        return " or ".join(_term(i) for i in range(terms))
    best = ""
    for shape in (lambda ts: " or ".join(ts), _balanced):
        count = 1
        while len(candidate := shape([_term(i) for i in range(count)])) <= max_chars and _accepted(candidate):
            if candidate.count(" or ") >= best.count(" or "):
                best = candidate
            count += 1
    return best


def largest_accepted(base: str, parsed: str) -> str:
    """The most or-terms (up to those of `parsed`) the running server accepts, found by asking it:
    a cost bound (terms × resources scanned) refuses with 400 before scanning, so a refused try is
    cheap and an accepted one is one real scan."""
    most = parsed.count(" or ") + 1
    flat = " or ".join(_term(i) for i in range(most))
    shape = (
        (lambda n: " or ".join(_term(i) for i in range(n)))
        if parsed == flat
        else (lambda n: _balanced([_term(i) for i in range(n)]))
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def accepted(n: int) -> bool:
        body = {"schemas": [SEARCH], "filter": shape(n), "count": 1}
        return httpx.post(f"{base}/scim/v2/Users/.search", json=body, headers=headers, timeout=600).status_code == 200

    if accepted(most):
        return parsed
    low, high = 0, most  # accepted(low) (0: none yet), refused(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if accepted(middle) else (low, middle)
    return shape(max(low, 1))


def _accepted(expression: str) -> bool:
    try:
        parse_filter(expression)
    except Exception:
        return False
    return True


def _term(i: int) -> str:
    return UNINDEXED[i % len(UNINDEXED)].format(i=i)


def _balanced(terms: list[str], top: bool = True) -> str:
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    inner = f"{_balanced(terms[:half], False)} or {_balanced(terms[half:], False)}"
    return inner if top else f"({inner})"


def reverse_bulk(operations: int, run: str) -> dict[str, Any]:
    ops = []
    for i in range(operations):
        data: dict[str, Any] = {"schemas": [USER, ENTERPRISE], "userName": f"stall-{run}-{i}@example.com"}
        if i + 1 < operations:
            data[ENTERPRISE] = {"manager": {"value": f"bulkId:b{i + 1}"}}
        ops.append({"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": data})
    return {"schemas": [BULK], "Operations": ops}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class Phase:
    name: str
    probes: list[float] = field(default_factory=list)  # /health, ms (with the held-up probes)
    heavy: list[float] = field(default_factory=list)  # heavy requests, s
    cpu: float = 0.0
    refused: str | None = None

    def p(self, q: float) -> float:
        ordered = sorted(self.probes)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def run_phase(
    name: str, base: str, pid: int, seconds: float, interval: float, clients: int, heavy: Any | None
) -> Phase:
    phase = Phase(name)
    stop = threading.Event()

    def probe() -> None:
        # A probe held up L ms also stands for the probes a monitor would have sent meanwhile: they
        # are recorded as L - interval, L - 2 interval, … (HdrHistogram's correction for
        # coordinated omission), so a 30 s stall weighs as 3,000 late probes, not as one.
        step = interval * 1000
        with httpx.Client(base_url=base, timeout=600) as http:
            while not stop.is_set():
                started = time.perf_counter()
                http.get("/health")
                latency = (time.perf_counter() - started) * 1000
                phase.probes.append(latency)
                missed = latency - step
                while missed > step:
                    phase.probes.append(missed)
                    missed -= step
                time.sleep(max(0.0, interval - (time.perf_counter() - started)))

    def load(client: int) -> None:
        assert heavy is not None
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600) as http:
            n = 0
            while not stop.is_set():
                started = time.perf_counter()
                answer = heavy(http, f"{client}-{n}")
                if answer.status_code >= 400:
                    phase.refused = f"{answer.status_code} {answer.text[:200]}"
                    return
                phase.heavy.append(time.perf_counter() - started)
                n += 1

    cpu_before = cpu_seconds(pid)
    threads = [threading.Thread(target=probe)]
    threads += [threading.Thread(target=load, args=(c,)) for c in range(clients if heavy else 0)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()  # a heavy request in flight is waited for: its CPU and its stall count
    phase.cpu = cpu_seconds(pid) - cpu_before
    return phase


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--filter-terms", type=int, help="`or` terms in the worst filter (default: as many as fit)")
    parser.add_argument("--filter-chars", type=int, default=1 << 20, help="longest filter to try (default: no bound)")
    parser.add_argument("--bulk-ops", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=1, help="heavy clients sending back to back")
    parser.add_argument("--probe-interval", type=float, default=0.01)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="scim-stall-"))
    db = workdir / "stall.db"
    started = time.perf_counter()
    seed_sqlite(str(db), 0, args.users)
    print(f"seeded {args.users} users in {time.perf_counter() - started:.1f} s", flush=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "serve", "--port", str(port), "--store", f"sqlite:///{db}"]
        + ["--log-level", "warning"],
        env={**os.environ, "SCIM_BRIDGE_TOKENS": TOKEN, "SCIM_BRIDGE_MAX_BODY_BYTES": str(16 * 1024 * 1024)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    expression = worst_filter(args.filter_terms, args.filter_chars)
    phases: list[Phase] = []
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        if args.filter_terms is None:  # the parser accepts it; the server's cost bound may not
            expression = largest_accepted(base, expression)
        terms = expression.count(" or ") + 1
        search = {"schemas": [SEARCH], "filter": expression, "count": 1}
        common = (base, process.pid, args.seconds, args.probe_interval, args.clients)
        phases.append(run_phase("idle", *common, None))
        print(f"idle done; filter of {terms} terms ({len(expression)} characters)", flush=True)
        phases.append(run_phase("filter", *common, lambda http, _: http.post("/scim/v2/Users/.search", json=search)))
        print(f"filter done; bulk of {args.bulk_ops} operations in reverse bulkId order", flush=True)
        phases.append(
            run_phase(
                "bulk", *common, lambda http, run: http.post("/scim/v2/Bulk", json=reverse_bulk(args.bulk_ops, run))
            )
        )
    finally:
        process.terminate()
        process.wait(timeout=10)

    idle = phases[0]
    print(
        f"\nstall benchmark: {args.users} users (SQLite), {args.clients} heavy client(s), {args.seconds:g} s per phase"
    )
    print(
        f"filter: {terms} or-terms ({len(expression)} characters) on unindexed attributes; "
        f"bulk: {args.bulk_ops} ops, reverse bulkId order\n"
    )
    header = f"{'phase':7} {'heavy':>6} {'heavy p50 s':>12} {'CPU ms/heavy':>13} {'health n':>9}"
    print(header + f" {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99/idle':>9}")
    for phase in phases:
        count = len(phase.heavy)
        per = f"{phase.cpu / count * 1000:13.0f}" if count else f"{'-':>13}"
        median = f"{statistics.median(phase.heavy):12.2f}" if count else f"{'-':>12}"
        print(
            f"{phase.name:7} {count:6d} {median} {per} {len(phase.probes):9d} {phase.p(0.5):8.2f} "
            f"{phase.p(0.99):8.2f} {max(phase.probes, default=0):8.1f} {phase.p(0.99) / idle.p(0.99):9.1f}"
        )
        if phase.refused:
            print(f"        refused: {phase.refused}")
    print(f"\nidle /health CPU: {idle.cpu / max(len(idle.probes), 1) * 1000:.2f} ms per request")
    worst = max(p.p(0.99) for p in phases[1:])
    print(f"aim /health p99 ≤ 50 ms under load: {'met' if worst <= 50 else 'NOT met'} (worst p99 {worst:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
