"""Assemble the sync side from a policy: the targets with their credentials, the engine, the
workers that run inside the bridge process (started and stopped with the app)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from ..store import REVOCATION_LANE, STANDARD_LANE, Store
from ..targets.base import Target
from ..targets.registry import TARGETS
from ..targets.settings import TargetConfigError, TargetSettings
from .engine import SyncEngine
from .policy import Policy, PolicyError, load_policy, target_credentials
from .worker import SyncWorker, WorkerOptions

log = logging.getLogger("scim_bridge.sync")


def build_targets(policy: Policy) -> dict[str, Target]:
    """A translator for every target the policy enables, each built by its registry entry."""
    targets: dict[str, Target] = {}
    sections, access = dict(policy.targets), dict(policy.access)
    for name, entry in TARGETS.items():
        section = sections.get(name)
        if section is None or not section.enabled:
            continue
        settings = TargetSettings(
            section.base_url,
            section.rate,
            target_credentials(section),
            section.service_account_email,
            access[name].model_dump() if name in access else {},
        )
        try:
            targets[name] = entry.build(settings)
        except TargetConfigError as error:
            raise PolicyError(str(error)) from None
    return targets


async def close_targets(targets: dict[str, Target]) -> None:
    """Close each translator's HTTP clients (a translator closes its capability clients too)."""
    for target in targets.values():
        await target.close()


class SyncRuntime:
    """The workers of one bridge process."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        targets: dict[str, Target],
        workers: int = 1,
        options: WorkerOptions | None = None,
    ) -> None:
        self.engine = SyncEngine(store, policy, targets)
        self.workers = [SyncWorker(store, self.engine, options) for _ in range(workers)]
        # One more worker for the revocation lane alone: a leaver never waits for a free slot
        # behind a backlog of joiners.
        options = options or WorkerOptions()
        self.workers.append(
            SyncWorker(
                store,
                self.engine,
                WorkerOptions(
                    concurrency=4,
                    lease_seconds=options.lease_seconds,
                    max_attempts=options.max_attempts,
                    base_delay=options.base_delay,
                    max_delay=options.max_delay,
                    idle_poll=0.05,
                ),
                lanes=[REVOCATION_LANE],
            )
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.expiry_sweep_seconds = 30.0

    @classmethod
    def from_file(
        cls, store: Store, path: str | Path, workers: int = 1, options: WorkerOptions | None = None
    ) -> SyncRuntime:
        policy = load_policy(path)
        return cls(store, policy, build_targets(policy), workers, options)

    def start(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(worker.run(self._stop)) for worker in self.workers]
        self._tasks.append(asyncio.create_task(self._startup()))
        log.info(
            "sync: %d worker(s) + 1 for revocations, for %s",
            len(self.workers) - 1,
            ", ".join(self.engine.targets) or "no target",
        )

    async def _startup(self) -> None:
        """Grants are re-applied at every start (the policy may have changed), and external users'
        access dates are watched so an expiry revokes access without any directory change."""
        try:
            await self.engine.request_access_sync()
            await self._requeue_if_policy_changed()
        except Exception:  # the store may be down at start: the next group change asks again
            log.warning("sync: could not queue the grants run at start", exc_info=True)
        if self.engine.policy.reconcile.interval_seconds and self.engine.targets:
            self._tasks.append(asyncio.create_task(self._reconcile_periodically()))
        if self.engine.policy.access.external.expiry_attribute:
            while not self._stop.is_set():
                try:
                    await self.engine.enqueue_expired()
                except Exception:
                    log.warning("sync: expiry sweep failed", exc_info=True)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=self.expiry_sweep_seconds)
                except TimeoutError:
                    pass

    async def _requeue_if_policy_changed(self) -> None:
        """A policy that differs from the one the directory was last synced with re-evaluates every
        user and group (standard lane): level-triggered, so only real differences call a target."""
        store = self.engine.store
        digest = hashlib.sha256(self.engine.policy.model_dump_json().encode()).hexdigest().encode()
        last = await store.kv_get("sync", "policy-digest")
        if last == digest:
            return
        queued = 0
        if last is not None:  # a first start has nothing synced under another policy
            for resource_type in ("Group", "User"):
                async for record in store.scan(resource_type):
                    await store.enqueue(resource_type, record.id, STANDARD_LANE)
                    queued += 1
            log.info("sync: the policy changed; %d users and groups re-evaluated", queued)
        await store.kv_put("sync", "policy-digest", digest)

    async def _reconcile_periodically(self) -> None:
        """The policy's `reconcile.interval_seconds`: report (or repair) drift on a schedule; the
        last report is at GET /admin/api/reconcile."""
        from .reconcile import Reconciler

        config = self.engine.policy.reconcile
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=config.interval_seconds)
                return
            except TimeoutError:
                pass
            try:
                drift = await Reconciler(self.engine.store, self.engine.policy, self.engine.targets).run(config.repair)
                if drift:
                    log.warning("reconcile: %d difference(s)%s", len(drift), ", repaired" if config.repair else "")
            except Exception:
                log.warning("reconcile: periodic run failed", exc_info=True)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await close_targets(self.engine.targets)
