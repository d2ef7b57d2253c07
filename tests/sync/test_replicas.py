"""Three bridge replicas on one Redis, one killed -9 at random moments and restarted, under SCIM
load spread over the three (creates, updates, group membership, deactivations), with the sync
running in every replica. Both emulators, live servers of their own, must end exactly in the
state the directory asks for: every account once, every change applied at most once (counted
from each emulator's log of the calls it answered).

The schedule (which replica dies when, the order of the load) comes from a seeded random
generator; the seed is printed, and SCIM_BRIDGE_TEST_SEED replays one.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from scim_bridge.emulators import cloudinary, iconik
from tests.emulators.live import LiveApp
from tests.live import free_port
from tests.scim.conftest import GROUP, PATCH, USER
from tests.sync.emulated_policy import emulated_policy

TOKEN = "replicas-test-token"
REPLICAS = 3
USERS = 90
GROUPS = 5
LEASE_SECONDS = 2
KILLS = 8  # at least, during the load and the sync after it


def _start(port: int, store: str, policy: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SCIM_BRIDGE_TOKENS": TOKEN,
        "SCIM_BRIDGE_POLICY": str(policy),
        "SCIM_BRIDGE_SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
        "SCIM_BRIDGE_LOG_LEVEL": "error",
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "scim_bridge", "serve", "--port", str(port), "--store", store],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


class CallLog:
    """Wraps an emulator's ASGI app: when each call was answered, and with what status. A change
    applied twice shows as a second successful call of the same kind to the same object."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[tuple[float, str, int]] = []  # (monotonic time, "METHOD /path", status)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        self.calls.append((time.monotonic(), f"{scope['method']} {scope['path']}", status))

    def succeeded(self) -> list[tuple[float, str]]:
        return [(at, call) for at, call, status in list(self.calls) if 200 <= status < 300]


class Replicas:
    """Three `scim-bridge serve` processes; kill -9 and restart one at random moments."""

    def __init__(self, store: str, policy: Path, logs: Path, rng: random.Random) -> None:
        self.store, self.policy, self.logs, self.rng = store, policy, logs, rng
        self.ports = [free_port() for _ in range(REPLICAS)]
        self.processes = [_start(p, store, policy, logs / f"replica{i}.log") for i, p in enumerate(self.ports)]
        self.kills = 0
        self.killed_at: list[float] = []
        self._stop = threading.Event()
        self._killer = threading.Thread(target=self._kill_at_random, daemon=True)
        for port in self.ports:
            _wait_ready(port)

    def start_killing(self) -> None:
        self._killer.start()

    def _kill_at_random(self) -> None:
        # at any moment: mid-request or mid-sync, and now and then one still starting up (a kill
        # soon after the last restart); one replica at a time, so the other two keep serving
        while not (self._stop.is_set() and self.kills >= KILLS):
            time.sleep(self.rng.uniform(0.3, 1.5))
            victim = self.rng.randrange(REPLICAS)
            self.processes[victim].send_signal(signal.SIGKILL)
            self.processes[victim].wait()
            self.kills += 1
            self.killed_at.append(time.monotonic())
            time.sleep(self.rng.uniform(0.0, 0.3))  # down for a moment, then back
            self.processes[victim] = _start(
                self.ports[victim], self.store, self.policy, self.logs / f"replica{victim}.log"
            )
            if self.rng.random() < 0.8:
                _wait_ready(self.ports[victim])
        for port in self.ports:
            _wait_ready(port)

    def stop_killing(self) -> None:
        """After KILLS kills at least; returns once every replica is up again."""
        self._stop.set()
        if self._killer.is_alive():
            self._killer.join(timeout=60)

    def close(self) -> None:
        self.stop_killing()
        for process in self.processes:
            process.send_signal(signal.SIGKILL)
            process.wait()


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30  # a loaded 2-core machine takes seconds to import and start
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"bridge on port {port} did not start")


@dataclass
class Directory:
    """What the IdP asked for (every write retried until a replica acknowledged it), and how often
    each resource was written: a target may apply a user's changes at most that often."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # email → {id, given, active}
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {id, members: set of emails}
    writes: Counter[str] = field(default_factory=Counter)  # email → update sends (retries included)


class LoadBalancer:
    """An IdP behind a load balancer: each request to the next replica; one that is down (killed)
    or answers 503 is skipped and the request goes to another, as a balancer's retry would."""

    def __init__(self, ports: list[int]) -> None:
        self.clients = [
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}/scim/v2",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
            for port in ports
        ]
        self.turn = 0

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            client = self.clients[self.turn % len(self.clients)]
            self.turn += 1
            try:
                response = client.request(method, path, json=body)
                if response.status_code != 503:
                    return response
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no replica answered {method} {path}"
            time.sleep(0.02)

    def create(self, path: str, body: dict[str, Any], attribute: str, value: str) -> str:
        response = self.send("POST", path, body)
        if response.status_code == 409:  # an earlier send landed and its answer died with a replica
            return self._find(path, attribute, value)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def _find(self, path: str, attribute: str, value: str) -> str:
        response = self.send("GET", f'{path}?filter={attribute} eq "{value}"')
        [found] = response.json()["Resources"]
        return str(found["id"])

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _user_body(email: str, given: str, active: bool) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": email,
        "name": {"givenName": given},
        "emails": [{"value": email, "primary": True}],
        "active": active,
    }


def _run_load(balancer: LoadBalancer, rng: random.Random) -> Directory:
    directory = Directory()
    emails = [f"replica{i}@example.com" for i in range(USERS)]
    for index in range(GROUPS):
        name = f"team{index}"
        group_id = balancer.create("/Groups", {"schemas": [GROUP], "displayName": name}, "displayName", name)
        directory.groups[name] = {"id": group_id, "members": set()}
    for email in emails:
        user_id = balancer.create("/Users", _user_body(email, "First", True), "userName", email)
        directory.users[email] = {"id": user_id, "given": "First", "active": True}
    operations = (
        [("update", email) for email in rng.sample(emails, USERS // 2)]
        + [("join", email) for email in emails]
        + [("join", email) for email in rng.sample(emails, USERS // 3)]
        + [("deactivate", email) for email in rng.sample(emails, USERS // 4)]
    )
    rng.shuffle(operations)
    for step, (kind, email) in enumerate(operations):
        user = directory.users[email]
        if kind == "update":
            user["given"] = f"Renamed{step}"
            directory.writes[email] += 1
            response = balancer.send("PUT", f"/Users/{user['id']}", _user_body(email, user["given"], user["active"]))
        elif kind == "deactivate":
            user["active"] = False
            directory.writes[email] += 1
            response = balancer.send(
                "PATCH",
                f"/Users/{user['id']}",
                {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
            )
        else:
            name = rng.choice(sorted(set(directory.groups) - _groups_of(directory, email)))
            directory.groups[name]["members"].add(email)
            response = balancer.send(
                "PATCH",
                f"/Groups/{directory.groups[name]['id']}",
                {
                    "schemas": [PATCH],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
                },
            )
        assert response.status_code in (200, 204), response.text
    return directory


def _groups_of(directory: Directory, email: str) -> set[str]:
    return {name for name, group in directory.groups.items() if email in group["members"]}


def _differences(directory: Directory, cld: cloudinary.CloudinaryState, ico: iconik.IconikState) -> list[str]:
    """Where either target differs from the directory (empty: converged exactly)."""
    problems: list[str] = []
    cld_users = list(cld.users.values())
    ico_users = [u for u in ico.users.values() if u["id"] != ico.token_user_id]
    for target, users in (("cloudinary", cld_users), ("iconik", ico_users)):
        counted = Counter(u["email"] for u in users)
        problems += [f"{target}: {email} {n} times" for email, n in counted.items() if n > 1]
        problems += [f"{target}: {email} not in the directory" for email in counted if email not in directory.users]
    cld_by_email = {u["email"]: u for u in cld_users}
    ico_by_email = {u["email"]: u for u in ico_users}
    cld_group_names = {g["id"]: g["name"] for g in cld.groups.values()}
    ico_group_names = {g["id"]: g["name"] for g in ico.groups.values()}
    for email, want in directory.users.items():
        c, i = cld_by_email.get(email), ico_by_email.get(email)
        if not want["active"]:  # deactivated: disabled where it was provisioned (never provisioned is fine)
            if (c and c["enabled"]) or (i and i["status"] == "ACTIVE"):
                problems.append(f"{email}: still active ({c and c['enabled']}, {i and i['status']})")
            continue
        if c is None or i is None:
            problems.append(f"{email}: missing in {'cloudinary' if c is None else 'iconik'}")
            continue
        if not c["enabled"] or i["status"] != "ACTIVE":
            problems.append(f"{email}: should be active: {c['enabled']}, {i['status']}")
        if i["first_name"] != want["given"]:  # Cloudinary keeps no given name: its `name` is the userName
            problems.append(f"{email}: iconik first name should be {want['given']}: {i['first_name']}")
        groups = _groups_of(directory, email)
        cld_groups = {cld_group_names[g] for g, ids in cld.members.items() if c["id"] in ids and g in cld_group_names}
        ico_groups = {ico_group_names[g] for g in i["groups"] if g in ico_group_names}
        if cld_groups != groups or ico_groups != groups:
            problems.append(f"{email}: groups should be {sorted(groups)}: {sorted(cld_groups)}, {sorted(ico_groups)}")
    for target, names in (("cloudinary", cld_group_names), ("iconik", ico_group_names)):
        counted = Counter(names.values())
        problems += [f"{target}: group {name} {n} times" for name, n in counted.items() if n > 1]
        if set(counted) != set(directory.groups):
            problems.append(f"{target}: groups {sorted(counted)}, not {sorted(directory.groups)}")
    return problems


# The calls each change costs (paths from the emulators' logs; ids are hex or UUIDs).
_ID = r"[0-9a-f-]{20,}"
CLD_CREATE_USER = re.compile(rf"^POST /v1_1/provisioning/accounts/{_ID}/users$")
CLD_UPDATE_USER = re.compile(rf"^PUT /v1_1/provisioning/accounts/{_ID}/users/({_ID})$")
CLD_CREATE_GROUP = re.compile(rf"^POST /v1_1/provisioning/accounts/{_ID}/user_groups$")
CLD_ADD_MEMBER = re.compile(rf"^POST /v1_1/provisioning/accounts/{_ID}/user_groups/{_ID}/users/{_ID}$")
ICO_CREATE_USER = re.compile(r"^POST /API/users/v1/users/$")
ICO_UPDATE_USER = re.compile(rf"^PATCH /API/users/v1/users/({_ID})/$")
ICO_CREATE_GROUP = re.compile(r"^POST /API/users/v1/groups/$")
ICO_ADD_MEMBER = re.compile(rf"^POST /API/users/v1/groups/{_ID}/users/{_ID}/$")


def _applied_twice(
    directory: Directory, targets: list[tuple[str, Any, CallLog]], killed_at: list[float]
) -> tuple[list[str], int]:
    """Changes a target applied more often than the directory made them, beyond what kills explain.
    An account or a group is created once, whatever happens. A member is added once and a user
    updated once per write, except where a replica died between the target call and recording it:
    the next replica to claim the entry sends it again (the same state, so no harm). Every such
    re-send must follow a kill, so the excess calls on one object may not outnumber the kills
    between (shortly before) its first call and its last. Also returns how many re-sends there were."""
    problems: list[str] = []
    resent = 0
    patterns = {
        "cloudinary": (CLD_CREATE_USER, CLD_UPDATE_USER, CLD_CREATE_GROUP, CLD_ADD_MEMBER),
        "iconik": (ICO_CREATE_USER, ICO_UPDATE_USER, ICO_CREATE_GROUP, ICO_ADD_MEMBER),
    }
    for target, state, log in targets:
        create_user, update_user, create_group, add_member = patterns[target]
        calls = log.succeeded()
        accounts = sum(1 for u in state.users.values() if u["email"] in directory.users)
        for pattern, want in ((create_user, accounts), (create_group, GROUPS)):
            made = sum(1 for _, call in calls if pattern.match(call))
            if made != want:
                problems.append(f"{target}: {made} calls matching {pattern.pattern} for {want} created")
        email_of = {u["id"]: u["email"] for u in state.users.values()}
        times: dict[str, list[float]] = {}
        allowed: dict[str, int] = {}
        for at, call in calls:
            if add_member.match(call):
                times.setdefault(call, []).append(at)
                allowed[call] = 1
            elif m := update_user.match(call):
                email = email_of.get(m.group(1), "?")
                times.setdefault(email, []).append(at)
                allowed[email] = directory.writes[email]
        for key, moments in times.items():
            excess = len(moments) - allowed[key]
            resent += max(0, excess)
            kills = sum(1 for k in killed_at if moments[0] - LEASE_SECONDS - 5 <= k <= moments[-1])
            if excess > kills:
                problems.append(f"{target}: {key}: {len(moments)} calls for {allowed[key]} changes, {kills} kills")
    return problems, resent


@pytest.mark.slow  # ~30-60 s: three bridge processes start and restart on two cores
def test_three_replicas_with_kill_9_converge_exactly(tmp_path: Path, redis_url: str) -> None:
    seed = int(os.environ.get("SCIM_BRIDGE_TEST_SEED") or random.randrange(1 << 32))
    print(f"three-replica kill test: seed {seed} (SCIM_BRIDGE_TEST_SEED={seed} replays the schedule)")
    load_rng, kill_rng = random.Random(seed), random.Random(seed + 1)
    redis.Redis.from_url(redis_url).flushdb()
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    cld_log, ico_log = CallLog(cloudinary.build(cld_state)), CallLog(iconik.build(ico_state))
    with LiveApp(cld_log) as cld, LiveApp(ico_log) as ico:
        policy = emulated_policy(
            tmp_path,
            cld_state,
            cld.url,
            ico_state,
            ico.url,
            deprovision="disable",
            # a quarter of the directory is deactivated on purpose: not a mass deprovision
            safety={"deprovision": {"max_count": 1000, "max_share": 100}},
        )
        replicas = Replicas(redis_url, policy, tmp_path, kill_rng)
        balancer = LoadBalancer(replicas.ports)
        try:
            replicas.start_killing()
            directory = _run_load(balancer, load_rng)
            replicas.stop_killing()
            deadline = time.monotonic() + 60
            while problems := _differences(directory, cld_state, ico_state):
                assert time.monotonic() < deadline, f"seed {seed}, {replicas.kills} kills: " + "; ".join(problems[:30])
                time.sleep(0.2)
            time.sleep(LEASE_SECONDS + 1)  # past the lease: re-claimed work has run again, if it would
            assert _differences(directory, cld_state, ico_state) == []
            twice, resent = _applied_twice(
                directory, [("cloudinary", cld_state, cld_log), ("iconik", ico_state, ico_log)], replicas.killed_at
            )
            assert not twice, f"seed {seed}: " + "; ".join(twice)
            calls = sum(len(log.succeeded()) for log in (cld_log, ico_log))
            print(
                f"three-replica kill test: {replicas.kills} kills, {calls} target calls, converged; "
                f"{resent} re-sent after a kill"
            )
        finally:
            balancer.close()
            replicas.close()


class KillOnFirstCreate:
    """Cloudinary's first account create is applied, and the bridge making it is killed -9 before
    the answer reaches it: the account exists, and the bridge never recorded its id."""

    def __init__(self, app: Any) -> None:
        self.app, self.bridge, self.killed = app, None, False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        creating = scope["type"] == "http" and CLD_CREATE_USER.match(f"{scope['method']} {scope['path']}")
        if self.killed or not creating or self.bridge is None:
            await self.app(scope, receive, send)
            return
        answer: list[Any] = []

        async def hold(message: Any) -> None:
            answer.append(message)

        await self.app(scope, receive, hold)  # applied
        self.bridge.send_signal(signal.SIGKILL)
        self.bridge.wait()
        self.killed = True
        for message in answer:  # to a connection nobody reads any more
            try:
                await send(message)
            except Exception:
                return


def test_an_account_whose_create_outlived_its_bridge_is_disabled_when_the_user_leaves(tmp_path: Path) -> None:
    """Found by the kill test: a create lands, the bridge dies before recording the account, and
    the user is deactivated before the entry is claimed again. The next claimer must not take
    the user for one never provisioned (nothing to disable): the leaver's account is found and
    disabled."""
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    killer = KillOnFirstCreate(cloudinary.build(cld_state))
    with LiveApp(killer) as cld, LiveApp(iconik.build(ico_state)) as ico:
        policy = emulated_policy(tmp_path, cld_state, cld.url, ico_state, ico.url, deprovision="disable")
        store, port = f"sqlite:///{tmp_path}/store.db", free_port()
        bridge = _start(port, store, policy, tmp_path / "bridge.log")
        try:
            _wait_ready(port)
            killer.bridge = bridge
            balancer = LoadBalancer([port])
            email = "leaver@example.com"
            scim_id = balancer.create("/Users", _user_body(email, "Lee", True), "userName", email)
            deadline = time.monotonic() + 20
            while not killer.killed:  # the create landed; its bridge is gone
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert [u["enabled"] for u in cld_state.users.values()] == [True]
            bridge = _start(port, store, policy, tmp_path / "bridge.log")
            patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
            assert balancer.send("PATCH", f"/Users/{scim_id}", patch).status_code == 200
            deadline = time.monotonic() + 30  # the dead bridge's lease expires (2 s), the entry is claimed again
            while any(u["enabled"] for u in cld_state.users.values()):
                assert time.monotonic() < deadline, f"the leaver's account is still enabled: {cld_state.users}"
                time.sleep(0.1)
            assert [u["email"] for u in cld_state.users.values()] == [email]  # adopted, not created again
            balancer.close()
        finally:
            bridge.send_signal(signal.SIGKILL)
            bridge.wait()
