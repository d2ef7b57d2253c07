"""POST /Users in process: the bridge's ASGI app called directly, no HTTP server and no socket.

Measures what a POST costs the bridge itself: process CPU µs per POST (event loop + SQLite
writer thread, time.process_time) and wall µs per POST, with `--concurrency` requests in flight
(as wrk's connections, so the group commit batches as it does under load). Best of `--rounds`.

    python bench/post_inprocess.py [--store sqlite|redis] [--posts 2000] [--rounds 5] [--concurrency 8]
    python bench/post_inprocess.py --profile out.html      # one round under pyinstrument
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scim_bridge.app import create_app  # noqa: E402
from scim_bridge.config import Settings  # noqa: E402

TOKEN = "bench-token"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
_names = itertools.count()


def body() -> bytes:
    """The body bench/front_door.py's POST script sends."""
    name = f"load-{time.time_ns()}-{next(_names)}@example.com"
    return (
        f'{{"schemas":["{USER_SCHEMA}"],"userName":"{name}","name":{{"givenName":"A","familyName":"B"}},'
        f'"emails":[{{"value":"{name}","type":"work","primary":true}}],"active":true}}'
    ).encode()


async def post(app: Any, payload: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/scim/v2/Users",
        "raw_path": b"/scim/v2/Users",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"application/scim+json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def round_of(app: Any, posts: int, concurrency: int) -> tuple[float, float]:
    bodies = [body() for _ in range(posts)]
    queue = iter(bodies)

    async def client() -> None:
        for payload in queue:
            status = await post(app, payload)
            if status != 201:
                raise RuntimeError(f"POST answered {status}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - cpu) / posts * 1e6, (time.perf_counter() - wall) / posts * 1e6


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--redis-url", default="", help="a throwaway Redis (default: one is started)")
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--observability", choices=["on", "off"], default="on", help="metrics and the console (issue 12's switch)"
    )
    parser.add_argument("--profile", default="", help="write a pyinstrument HTML profile of one round here")
    args = parser.parse_args()
    redis = None
    workdir = Path(tempfile.mkdtemp(prefix="scim-post-"))
    if args.store == "sqlite":
        url = f"sqlite:///{workdir}/bench.db"
    elif args.redis_url:
        url = args.redis_url
    else:
        from tests.redis_server import RedisServer

        redis = RedisServer().start()
        url = redis.url
    switch = args.observability == "on"
    app = create_app(Settings(store=url, tokens=[TOKEN], log_level="warning", metrics=switch, console=switch))
    try:
        async with app.router.lifespan_context(app):
            await round_of(app, 300, args.concurrency)  # warm-up
            if args.profile:
                from pyinstrument import Profiler

                with Profiler(interval=0.0002, async_mode="disabled") as profiler:
                    await round_of(app, args.posts, args.concurrency)
                Path(args.profile).write_text(profiler.output_html())
                print(profiler.output_text(unicode=True, color=False, show_all=False))
                return 0
            results = [await round_of(app, args.posts, args.concurrency) for _ in range(args.rounds)]
    finally:
        if redis is not None:
            redis.stop()
    cpu = min(r[0] for r in results)
    wall = min(r[1] for r in results)
    print(
        f"POST /Users in process, {args.store}, observability {args.observability}, "
        f"{args.posts} posts × {args.rounds} rounds, "
        f"{args.concurrency} in flight: best CPU {cpu:.0f} µs/POST, best wall {wall:.0f} µs/POST "
        f"(CPU per round: {', '.join(f'{r[0]:.0f}' for r in results)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
