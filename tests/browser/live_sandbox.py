"""The sandbox (bridge + both emulators, sample policy and directory) served over real HTTP on a
free port, in a thread, for the console's browser tests, its bench and scripts/screenshots."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from scim_bridge.auth.credentials import CredentialBook
from scim_bridge.config import Settings
from scim_bridge.sandbox import build_sandbox
from scim_bridge.store import open_store
from scim_bridge.sync.idmap import IdMap
from scim_bridge.web.server import server_config
from tests.live import free_port


class LiveSandbox:
    def __init__(self, workdir: Path | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="console-sandbox-"))
        self.app, self.access = build_sandbox(self.port, workdir=self.workdir)
        settings = Settings(host="127.0.0.1", port=self.port, log_level="warning", drain_seconds=0)
        self.server = uvicorn.Server(server_config(self.app, settings, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)
        self.root = f"http://127.0.0.1:{self.port}"
        self.admin_token = self.access["admin"]["token"]

    def __enter__(self) -> LiveSandbox:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    # helpers over the bridge's own APIs ------------------------------------------------------------
    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.access["admin"]["base_url"],
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )

    def scim(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.access["scim"]["base_url"],
            headers={"Authorization": f"Bearer {self.access['scim']['token']}"},
            timeout=30,
        )

    def wait_idle(self, seconds: float = 90) -> None:
        """Until the sync queue is empty (the initial load, or the changes just made)."""
        deadline = time.monotonic() + seconds
        with self.admin() as admin:
            while admin.get("/queue").json()["total"]:
                if time.monotonic() > deadline:
                    raise AssertionError("the sandbox's sync queue did not drain")
                time.sleep(0.2)

    def user_id(self, user_name: str) -> str:
        with self.scim() as scim:
            found = scim.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()["Resources"]
        return str(found[0]["id"])

    def deactivate(self, user_names: list[str]) -> None:
        with self.scim() as scim:
            for name in user_names:
                patch = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": False}],
                }
                scim.patch(f"/Users/{self.user_id(name)}", json=patch).raise_for_status()

    def raise_role_by_hand(self, email: str, role: str = "admin") -> None:
        """Someone changes a user's role in Cloudinary by hand (the emulator's Provisioning API): drift."""
        cld = self.access["cloudinary"]
        base = f"{cld['base_url']}/v1_1/provisioning/accounts/{cld['account_id']}"
        with httpx.Client(auth=(cld["key"], cld["secret"]), timeout=30) as client:
            found = next(u for u in client.get(f"{base}/users").json()["users"] if u["email"] == email)
            client.put(f"{base}/users/{found['id']}", json={"role": role}).raise_for_status()

    def cloudinary_role(self, email: str) -> str:
        cld = self.access["cloudinary"]
        base = f"{cld['base_url']}/v1_1/provisioning/accounts/{cld['account_id']}"
        with httpx.Client(auth=(cld["key"], cld["secret"]), timeout=30) as client:
            return str(next(u for u in client.get(f"{base}/users").json()["users"] if u["email"] == email)["role"])

    def _in_store(self, work: Any) -> Any:
        """Run `work(store)` on a connection of our own to the sandbox's store (SQLite allows several)."""

        async def run() -> Any:
            store = open_store(self.access["cli"]["store"])
            await store.open()
            try:
                return await work(store)
            finally:
                await store.close()

        # in a thread of its own: the caller may be inside Playwright's sync API, which holds a loop
        result: list[Any] = []
        worker = threading.Thread(target=lambda: result.append(asyncio.run(run())))
        worker.start()
        worker.join()
        return result[0]

    def console_token(self, name: str = "reader") -> str:
        """A stored token with the read-only `console` scope, as `scim-bridge credentials` makes it."""
        return str(
            self._in_store(lambda store: CredentialBook(store, [], {}, []).create_token(name, frozenset({"console"})))
        )

    def dead_letter(self, user_name: str, error: str) -> str:
        """Give up on a user's sync the way the worker does after its last attempt (IdMap.dead_letter)."""
        scim_id = self.user_id(user_name)
        self._in_store(lambda store: IdMap(store).dead_letter("User", scim_id, error, 8))
        return scim_id
