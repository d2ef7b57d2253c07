"""`eq` lookups stay flat as the directory grows: GET /Users?filter=userName eq "…" latency
at 1k, 100k and 1M stored users, on both stores, through the bridge's HTTP API.

Seeding a million users through HTTP would take an hour, so the stores are filled directly in
their own layout (the two seed_* functions mirror store/sqlite.py and store/redis.py, with the
document and index keys the service itself builds); the lookups then go through the bridge.

    python bench/eq_lookup.py [--sizes 1000,100000,1000000] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scim_bridge.scim.resources import index_keys_of  # noqa: E402
from scim_bridge.scim.schemas import USER  # noqa: E402
from scim_bridge.store.sqlite import _SCHEMA  # noqa: E402
from tests.live import free_port  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

TOKEN = "bench-token"
BATCH = 20_000


def user_document(i: int) -> tuple[str, bytes, list[tuple[str, str]], list[tuple[str, str]]]:
    user_id = f"{i:032x}"
    name = f"user{i}@example.com"
    document = {
        "schemas": [USER.core_schema],
        "id": user_id,
        "userName": name,
        "active": True,
        "name": {"givenName": "Given", "familyName": f"Family{i}"},
        "emails": [{"value": name, "type": "work", "primary": True}],
        "meta": {
            "resourceType": "User",
            "created": "2026-01-01T00:00:00.000Z",
            "lastModified": "2026-01-01T00:00:00.000Z",
            "location": f"http://127.0.0.1/scim/v2/Users/{user_id}",
            "version": 'W/"1"',
        },
    }
    keys, unique = index_keys_of(USER, document)
    return user_id, orjson.dumps(document), keys, unique


def seed_sqlite(path: str, start: int, stop: int) -> None:
    """Rows exactly as SqliteStore.create writes them (minus the sync-queue entries)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(_SCHEMA)
    connection.execute("PRAGMA journal_mode=WAL")
    for first in range(start, stop, BATCH):
        resources, entries = [], []
        for i in range(first, min(first + BATCH, stop)):
            user_id, body, keys, unique = user_document(i)
            resources.append(("User", user_id, 1, body))
            entries += [("User", a, v, user_id, int((a, v) in unique)) for a, v in set(keys) | set(unique)]
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO resources (type, id, version, body) VALUES (?, ?, ?, ?)", resources)
        connection.executemany(
            "INSERT INTO index_entries (type, attr, value, id, is_unique) VALUES (?, ?, ?, ?, ?)", entries
        )
        connection.execute("COMMIT")
    connection.close()


def seed_redis(url: str, start: int, stop: int) -> None:
    """Keys exactly as RedisStore's write script sets them (minus the sync-queue entries)."""
    client = redis.Redis.from_url(url)
    for first in range(start, stop, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(first + BATCH, stop)):
            user_id, body, keys, unique = user_document(i)
            seq = i + 1
            pipe.hset(f"sb:r:User:{user_id}", mapping={"body": body, "version": 1, "seq": seq})
            pipe.zadd("sb:all:User", {user_id: seq})
            for attr, value in set(keys) | set(unique):
                is_unique = (attr, value) in unique
                pipe.sadd(f"sb:ix:User:{attr}:{value}", user_id)
                if is_unique:
                    pipe.set(f"sb:u:User:{attr}:{value}", user_id)
                pipe.sadd(f"sb:keys:User:{user_id}", f"{attr}\0{value}\0{int(is_unique)}")
        pipe.execute()
    client.set("sb:seq", stop)
    client.close()


def measure(store_url: str, size: int, lookups: int) -> tuple[float, float]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scim_bridge",
            "serve",
            "--port",
            str(port),
            "--store",
            store_url,
            "--log-level",
            "warning",
        ],
        env={**os.environ, "SCIM_BRIDGE_TOKENS": TOKEN},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/scim/v2", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as client:
            for _ in range(100):
                try:
                    client.get("/ServiceProviderConfig")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            rng = random.Random(size)
            samples = []
            for n in range(lookups + 200):
                name = f"user{rng.randrange(size)}@example.com"
                started = time.perf_counter()
                response = client.get("/Users", params={"filter": f'userName eq "{name}"'})
                elapsed = time.perf_counter() - started
                assert response.status_code == 200 and response.json()["totalResults"] == 1, response.text
                if n >= 200:  # the first requests warm connections and caches
                    samples.append(elapsed * 1000)
    finally:
        process.terminate()
        process.wait(timeout=10)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="scim-eq-"))
    server = RedisServer().start()
    rows: list[tuple[str, int, float, float, float]] = []
    try:
        sqlite_path, seeded = str(workdir / "eq.db"), 0
        for size in sizes:  # grow the same stores: 1k, then up to 100k, then up to 1M
            started = time.perf_counter()
            seed_sqlite(sqlite_path, seeded, size)
            seed_redis(server.url, seeded, size)
            seeded, seed_seconds = size, time.perf_counter() - started
            for name, url in (("sqlite", f"sqlite:///{sqlite_path}"), ("redis", server.url)):
                p50, p99 = measure(url, size, args.lookups)
                rows.append((name, size, p50, p99, seed_seconds))
    finally:
        server.stop()
    print(f'\neq lookup latency, GET /Users?filter=userName eq "…", {args.lookups} sequential lookups per cell\n')
    print(f"{'store':7} {'users':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, size, p50, p99, _ in rows:
        print(f"{name:7} {size:9d} {p50:8.3f} {p99:8.3f}")
    print("\nratio largest ÷ smallest (aim ≈ 1: as fast at 1M users as at 1k)")
    for name in ("sqlite", "redis"):
        mine = [r for r in rows if r[0] == name]
        print(f"{name:7} p50 {mine[-1][2] / mine[0][2]:.2f}   p99 {mine[-1][3] / mine[0][3]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
