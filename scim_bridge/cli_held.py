"""`scim-bridge held list|approve|reject|release`: the deprovision brake's held changes, straight on
the store the bridge uses (sync/brake.py), so an operator can decide while the bridge is down."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from .cli import _policy, _with_store
from .config import ConfigError


def held(args: argparse.Namespace) -> int:
    """List, approve, reject or release held changes; exit 1 on a decision that cannot apply."""
    from .sync.brake import Brake, DecisionError

    settings, policy = _policy(args, "held")
    if args.action in ("approve", "reject") and bool(args.ids) == bool(args.all):
        raise ConfigError("held: name the held changes (User/<id> …) or give --all, not both")

    async def work(store: Any) -> int:
        brake = Brake(store, policy.safety.deprovision, policy.enabled_targets())
        try:
            if args.action == "list":
                items = [item.as_dict() for item in await brake.held(args.target)]
                if args.json:
                    print(json.dumps({"brake": await brake.status(), "held": items}, indent=1))
                    return 0
                for name, state in (await brake.status())["targets"].items():
                    engaged = state["engaged"]
                    print(
                        f"{name}: {'ENGAGED (' + engaged['reason'] + ')' if engaged else 'not engaged'}; "
                        f"{state['in_window']} of {state['threshold']} in the last {state['window_seconds']:g} s; "
                        f"{state['held']} held"
                    )
                for item in items:
                    resource = f"{item['resource']['type']}/{item['resource']['id']}"
                    print(f"  {item['target']:10} {resource}  {', '.join(item['kinds'])}")
                return 0
            by = f"cli:{args.by or getpass.getuser()}" if args.action != "release" else f"cli:{getpass.getuser()}"
            if args.action == "release":
                print(f"released: {', '.join(await brake.release(by, args.target)) or 'nothing'}")
                return 0
            decide = brake.approve if args.action == "approve" else brake.reject
            count = await decide(by, args.target, None if args.all else args.ids)
            print(f"{'approved' if args.action == 'approve' else 'rejected'} {count} held change(s)")
            return 0
        except DecisionError as error:
            print(f"scim-bridge held: {error}", file=sys.stderr)
            return 1

    return int(_with_store(settings, work))
