"""One emulator in its own process, for bench/initial_load.py: so the benchmark measures the bridge,
not two emulators sharing the benchmark's interpreter (their JSON encoding set the pace before).

    python bench/emulator_process.py cloudinary|iconik --port P --rate R --credentials FILE

Serves the emulator under uvicorn (uvloop, httptools) with its rate limit on, writes the
credentials the bridge's policy reads to FILE, and adds three benchmark-only
routes in front of it, outside the rate limit (they read the state in place, as the in-process
benchmark did, and never through the vendor API the bridge is limited on):

    GET  /_bench/counts          {"users": n, "calls": n}
    POST /_bench/active          ["email", …] → the emails whose account is active
    GET  /_bench/active?email=e  {"active": true|false|null}  (null: no such account yet)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scim_bridge.emulators import cloudinary, iconik  # noqa: E402


class BenchRoutes:
    """The /_bench/ routes in front of an emulator app (module docstring)."""

    def __init__(self, app: Any, state: Any, active: Any) -> None:
        self.app, self.state, self.active = app, state, active
        self._by_email: dict[str, dict[str, Any]] = {}

    def _account(self, email: str) -> dict[str, Any] | None:
        found = self._by_email.get(email)
        if found is None and len(self._by_email) != len(self.state.users):  # accounts since the last index
            self._by_email = {user.get("email"): user for user in list(self.state.users.values())}
            found = self._by_email.get(email)
        return found

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/_bench/"):
            await self.app(scope, receive, send)
            return
        answer: Any
        if path == "/_bench/counts":
            answer = {"users": len(self.state.users), "calls": len(self.state.calls)}
        elif scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            emails = orjson.loads(body)
            answer = [e for e in emails if (a := self._account(e)) is not None and self.active(a)]
        else:
            email = parse_qs(scope["query_string"].decode()).get("email", [""])[0]
            account = self._account(email)
            answer = {"active": None if account is None else bool(self.active(account))}
        body = orjson.dumps(answer)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["cloudinary", "iconik"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests/s")
    parser.add_argument("--credentials", type=Path, required=True)
    args = parser.parse_args()
    if args.kind == "cloudinary":
        cld = cloudinary.CloudinaryState()
        app = cloudinary.build(cld, cloudinary.CloudinarySwitches(hourly_limit=int(args.rate * 3600)))
        credentials = {"account_id": cld.account_id, "key": cld.key, "secret": cld.secret}
        state: Any = cld
        active = lambda account: account.get("enabled")  # noqa: E731
    else:
        ico = iconik.IconikState()
        app = iconik.build(ico, iconik.IconikSwitches(rate_per_second=args.rate, burst=1000))
        credentials = {"app_id": ico.app_id, "auth_token": ico.auth_token}
        state = ico
        active = lambda account: account.get("status") == "ACTIVE"  # noqa: E731
    config = uvicorn.Config(
        BenchRoutes(app, state, active),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="critical",
        lifespan="off",
        access_log=False,
    )
    args.credentials.write_text(json.dumps(credentials))  # the benchmark waits for /_bench/counts to answer
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
