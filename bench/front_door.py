"""Front-door benchmark: requests/s and p50/p99 of the SCIM endpoints an IdP hits most.

One run measures four servers, each in its own process under uvicorn (one worker, uvloop and
httptools, no access log), with wrk in another process on 127.0.0.1:
  bridge-sqlite, bridge-redis (a throwaway redis-server), starlette (the bare ceiling),
  scim2-server (python-scim's reference server from PyPI, the peer).
Workloads: POST /Users (unique userNames), GET /Users/{id}, GET /Users?filter=userName eq "…".
Ratios are computed from figures of the same run.

    python bench/front_door.py [--duration 10] [--connections 8] [--users 1000]
    python bench/front_door.py --observability both     # + the bridges with metrics (and console) off
    python bench/front_door.py --servers bridge-sqlite,starlette --workloads get --repeat 3

`--observability both` adds, for each bridge, the same cells with SCIM_BRIDGE_METRICS=off (and
SCIM_BRIDGE_CONSOLE=off where the settings have a console switch) and prints on ÷ off (issue 12:
within 3 %): the median of the repetitions' own ratios (each repetition runs on, then off, within
a minute), with the ratio of the medians beside it. `--repeat N` runs every cell N times, servers
alternating, and keeps each cell's median (and prints every run), so a burst of load from another
process on a shared machine moves one sample, not the figure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.live import free_port  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

TOKEN = "bench-token"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"

POST_LUA = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = string.format("%d-%d", os.time(), tid)  -- unique per run and per thread
end
function request()
  counter = counter + 1
  local name = string.format("load-%s-%d@example.com", prefix, counter)
  local body = string.format('{"schemas":["%s"],"userName":"%s","name":{"givenName":"A","familyName":"B"},'
    .. '"emails":[{"value":"%s","type":"work","primary":true}],"active":true}', USER_SCHEMA, name, name)
  return wrk.format("POST", BASE .. "/Users", HEADERS, body)
end
"""

CYCLE_LUA = """
local paths = {}
for line in io.lines(PATHS_FILE) do paths[#paths + 1] = line end
local i = math.random(1, #paths)
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], HEADERS)
end
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Server:
    name: str
    command: list[str]
    base: str  # path of the SCIM root
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    ids: list[str] = field(default_factory=list)  # seeded users
    names: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.port = free_port()
        command = [part.replace("{port}", str(self.port)) for part in self.command]
        self.process = subprocess.Popen(
            command, env={**os.environ, **self.env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)


def uvicorn(app: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--app-dir",
        str(ROOT / "bench"),
    ]


def bridge(store: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scim_bridge",
        "serve",
        "--port",
        "{port}",
        "--store",
        store,
        "--log-level",
        "warning",
    ]


def seed(server: Server, count: int) -> tuple[list[str], list[str]]:
    ids, names = [], []
    with httpx.Client(
        base_url=f"http://127.0.0.1:{server.port}{server.base}",
        timeout=30,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"},
    ) as client:
        for i in range(count):
            name = f"seed{i}@example.com"
            response = client.post(
                "/Users",
                json={
                    "schemas": [USER_SCHEMA],
                    "userName": name,
                    "name": {"givenName": "A", "familyName": "B"},
                    "emails": [{"value": name, "type": "work", "primary": True}],
                    "active": True,
                },
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
            names.append(name)
    return ids, names


def lua_script(server: Server, script: str, paths: list[str] | None, workdir: Path) -> Path:
    header = f'HEADERS = {{["Authorization"] = "Bearer {TOKEN}", ["Content-Type"] = "application/scim+json"}}\n'
    prelude = f'BASE = "{server.base}"\nUSER_SCHEMA = "{USER_SCHEMA}"\n{header}'
    if paths is not None:
        paths_file = workdir / f"{server.name}-paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        prelude += f'PATHS_FILE = "{paths_file}"\n'
    lua = workdir / f"{server.name}.lua"
    lua.write_text(prelude + script)
    return lua


def run_wrk(server: Server, lua: Path, duration: int, connections: int) -> Result:
    url = f"http://127.0.0.1:{server.port}"
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua), url]
    return parse_wrk(subprocess.run(command, capture_output=True, text=True).stdout)


def parse_wrk(output: str) -> Result:
    def millis(text: str) -> float:
        number, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = millis(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = millis(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return Result(rps, p50, p99, int(errors.group(1)) if errors else 0)


WORKLOADS = {"get": "GET /Users/{id}", "filter": "GET ?filter=eq", "post": "POST /Users"}


def observability_off() -> dict[str, str]:
    """The settings that turn metrics (and the console, where it has a switch) off."""
    from scim_bridge.config import Settings

    off = {"SCIM_BRIDGE_METRICS": "off"}
    if "console" in Settings.model_fields:
        off["SCIM_BRIDGE_CONSOLE"] = "off"
    return off


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--users", type=int, default=1000, help="users created before the GET workloads")
    parser.add_argument("--servers", default="", help="comma-separated server names (default: all)")
    parser.add_argument("--workloads", default="get,filter,post", help="comma-separated: get, filter, post")
    parser.add_argument(
        "--observability",
        choices=["on", "off", "both"],
        default="on",
        help="the bridges with metrics (and the console) on, off, or both in one run (on ÷ off printed)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell, alternating servers; the median is kept")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is needed (apt-get install wrk)")
    workloads = [WORKLOADS[name.strip()] for name in args.workloads.split(",") if name.strip()]

    redis = RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="scim-bench-"))
    env = {"SCIM_BRIDGE_TOKENS": TOKEN}
    bridges = []
    for off in {"on": [False], "off": [True], "both": [False, True]}[args.observability]:
        suffix, settings = ("-off", {**env, **observability_off()}) if off else ("", env)
        bridges += [
            Server(f"bridge-sqlite{suffix}", bridge(f"sqlite:///{workdir}/bench{suffix}.db"), "/scim/v2", settings),
            Server(
                f"bridge-redis{suffix}",
                bridge(redis.url.removesuffix("/0") + ("/1" if off else "/0")),
                "/scim/v2",
                settings,
            ),
        ]
    servers = [
        *bridges,
        Server("starlette", uvicorn("baseline_app:app"), "/scim/v2", {}),
        # The reference server as PyPI ships it (its own CLI), and the same library under uvicorn.
        Server(
            "scim2-server",
            [sys.executable, "-m", "scim2_server.testserver.cli", "--port", "{port}", "--bearer-token", TOKEN],
            "/v2",
            {},
        ),
        Server("scim2-uvicorn", uvicorn("peer_app:app"), "/v2", {"PEER_TOKEN": TOKEN}),
    ]
    if args.servers:
        wanted = {name.strip() for name in args.servers.split(",")}
        servers = [s for s in servers if s.name in wanted or s.name.removesuffix("-off") in wanted]
    samples: dict[tuple[str, str], list[Result]] = {}
    try:
        for repetition in range(args.repeat):
            for group in side_by_side(servers):
                for server in group:
                    server.start()
                try:
                    for server in group:
                        # The bridges keep their data across restarts (SQLite file, Redis); the peers
                        # and Starlette hold theirs in memory, so they are seeded at every start.
                        if repetition == 0 or not server.name.startswith("bridge"):
                            seeded = seed(server, args.users) if server.name != "starlette" else (["x"], ["x"])
                            server.ids, server.names = seeded
                    for workload in workloads:
                        results = measure(group, workload, args.duration, args.connections, workdir)
                        for server, result in zip(group, results, strict=True):
                            samples.setdefault((server.name, workload), []).append(result)
                finally:
                    for server in group:
                        server.stop()
    finally:
        redis.stop()
    medians = {key: median(runs) for key, runs in samples.items()}
    report(medians, args, samples)
    return 0


def side_by_side(servers: list[Server]) -> list[list[Server]]:
    """A bridge and its observability-off twin run at the same time and are measured in turns
    (`measure`); every other server runs alone."""
    names = {server.name for server in servers}
    twins = {server.name: server for server in servers if server.name.endswith("-off")}
    groups = []
    for server in servers:
        if server.name.endswith("-off") and server.name.removesuffix("-off") in names:
            continue
        twin = twins.get(server.name + "-off")
        groups.append([server, twin] if twin else [server])
    return groups


SLICE_SECONDS = 1


def measure(group: list[Server], workload: str, duration: int, connections: int, workdir: Path) -> list[Result]:
    """One result per server of the group. A pair (on and off) is measured in 1-s slices taken in
    turns, on, off, off, on…, so both halves of its ratio see the same moments of a shared VM
    (here a CPU-bound loop alone varies by ±25 % from one second to the next); a server alone, in
    one run of `duration` seconds."""
    scripts = [script_for(server, workload, workdir) for server in group]
    for server, script in zip(group, scripts, strict=True):
        run_wrk(server, script, 2, connections)  # warm-up
    if len(group) == 1:
        return [run_wrk(group[0], scripts[0], duration, connections)]
    slices: list[list[Result]] = [[] for _ in group]
    for turn in range(max(1, duration // SLICE_SECONDS)):
        order = list(range(len(group)))
        if turn % 2:  # on, off, off, on, on, off…: neither goes first every time
            order.reverse()
        for index in order:
            slices[index].append(run_wrk(group[index], scripts[index], SLICE_SECONDS, connections))
    return [combined(runs) for runs in slices]


def combined(runs: list[Result]) -> Result:
    """Slices of equal length: the mean rate, the median slice's latencies, every error."""
    middle = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
    return Result(sum(r.rps for r in runs) / len(runs), middle.p50_ms, middle.p99_ms, sum(r.errors for r in runs))


def script_for(server: Server, workload: str, workdir: Path) -> Path:
    if workload == "POST /Users":
        return lua_script(server, POST_LUA, None, workdir)
    if workload == "GET /Users/{id}":
        paths = [f"{server.base}/Users/{i}" for i in server.ids]
    else:
        paths = [f"{server.base}/Users?filter=" + quote(f'userName eq "{n}"') for n in server.names]
    return lua_script(server, CYCLE_LUA, paths, workdir)


def median(runs: list[Result]) -> Result:
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def report(
    results: dict[tuple[str, str], Result], args: argparse.Namespace, samples: dict[tuple[str, str], list[Result]]
) -> None:
    repeat = f", median of {args.repeat} alternating runs" if args.repeat > 1 else ""
    print(
        f"\nfront door, {args.connections} connections, {args.duration} s per cell{repeat}, {args.users} users seeded\n"
    )
    print(f"{'server':18} {'workload':18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  runs (req/s)")
    for (name, workload), r in results.items():
        runs = " ".join(f"{run.rps:.0f}" for run in samples[(name, workload)]) if args.repeat > 1 else ""
        print(f"{name:18} {workload:18} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:8d}  {runs}")

    def ratio(a: str, b: str, workload: str) -> str:
        if (a, workload) not in results or (b, workload) not in results:
            return "     –"
        return f"{results[(a, workload)].rps / results[(b, workload)].rps:6.2f}"

    print("\nratios (same run)                                        aim")
    for store in ("bridge-sqlite", "bridge-redis"):
        if not any(name == store for name, _ in results):
            continue
        for peer in ("scim2-server", "scim2-uvicorn"):
            print(f"{store:14} GET ÷ {peer:13} GET         {ratio(store, peer, WORKLOADS['get'])}×  ≥ 10× (as shipped)")
            print(f"{store:14} filter ÷ {peer:13} filter   {ratio(store, peer, WORKLOADS['filter'])}×  ≥ 10× (Redis)")
            print(f"{store:14} POST ÷ {peer:13} POST       {ratio(store, peer, WORKLOADS['post'])}×  ≥ 5× (as shipped)")
        print(
            f"{store:14} GET ÷ Starlette GET                     {ratio(store, 'starlette', WORKLOADS['get'])}   ≥ 0.5"
        )
        for workload in WORKLOADS.values():
            if (store + "-off", workload) in results:
                print(
                    f"{store:14} observability on ÷ off, {workload:15} {paired(samples, store, workload)}   ≥ 0.97"
                    f"  (ratio of medians {ratio(store, store + '-off', workload)})"
                )


def paired(samples: dict[tuple[str, str], list[Result]], store: str, workload: str) -> str:
    """On ÷ off as the median of each repetition's own ratio: the two runs of a pair are minutes
    apart at most, so a drift that moves both (the store's files growing with every POST run, load
    from another process, the VM's clock) cancels out instead of landing in one median."""
    on, off = samples[(store, workload)], samples[(store + "-off", workload)]
    ratios = sorted(a.rps / b.rps for a, b in zip(on, off, strict=False))
    return f"{ratios[len(ratios) // 2]:6.2f}"


if __name__ == "__main__":
    sys.exit(main())
