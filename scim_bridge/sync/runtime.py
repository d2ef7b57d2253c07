"""Assemble the sync side from a policy: the targets with their credentials, the engine, the
workers that run inside the bridge process (started and stopped with the app).

Every replica runs workers; the scheduled jobs (reconcile, expiry sweep, regrant pass) run on the
one replica that holds the job's lease (store/job_leases.py), and move when it dies."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from pathlib import Path

from .. import metrics
from ..audit.context import CORRELATION_ID
from ..store import REVOCATION_LANE, STANDARD_LANE, Store, StoreUnavailable
from ..store.job_leases import EXPIRY_SWEEP, RECONCILE, REGRANT, JobLeases
from ..targets.base import Target
from ..targets.http import CALL_OBSERVER, TargetCall
from ..targets.registry import TARGETS
from ..targets.settings import TargetConfigError, TargetSettings
from .engine import SyncEngine
from .notify import Notifier
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
            reviewer_routing=bool(policy.access.reviewers),
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
        leases: JobLeases | None = None,
    ) -> None:
        self.engine = SyncEngine(store, policy, targets)
        # the process's job leases; the app shares its own (audit chaining, last-login polling use
        # them too), a runtime built alone renews its own
        self._owns_leases = leases is None
        self.leases = leases or JobLeases(store)
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
                    stop_seconds=options.stop_seconds,
                ),
                lanes=[REVOCATION_LANE],
            )
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.expiry_sweep_seconds = 30.0
        # Operators hear of what needs them (sync/notify.py); the quarantine resumes the grants.
        self.notifier = Notifier(policy.notify)
        self.engine.brake.on_engaged = self._brake_engaged
        self.engine.quarantine.on_event = self.notifier.event
        self.engine.quarantine.on_resume = self._resumed
        self._verified_slot = -1

    @classmethod
    def from_file(
        cls,
        store: Store,
        path: str | Path,
        workers: int = 1,
        options: WorkerOptions | None = None,
        leases: JobLeases | None = None,
    ) -> SyncRuntime:
        policy = load_policy(path)
        return cls(store, policy, build_targets(policy), workers, options, leases)

    def start(self) -> None:
        self._stop.clear()
        self._observe_calls()
        self._tasks = [asyncio.create_task(worker.run(self._stop)) for worker in self.workers]
        self._tasks.append(asyncio.create_task(self._startup()))
        self._tasks.append(asyncio.create_task(self._watch()))
        if self._owns_leases:
            self._tasks.append(asyncio.create_task(self.leases.run(self._stop)))
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
        every = [s.regrant_every() for s in self.engine.policy.access.sections().values() if s.regrant_every()]
        if every and self.engine.targets:
            self._tasks.append(asyncio.create_task(self._regrant_periodically(min(every))))
        if self.engine.policy.access.external.expiry_attribute:
            await self.leases.settled()  # so that the first sweep is not skipped for want of an answer
            while not self._stop.is_set():
                try:
                    if self.leases.holds(EXPIRY_SWEEP):
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

    async def _regrant_periodically(self, interval: float) -> None:
        """`access.iconik.regrant_seconds`: content added in iconik under an `apply_to_contents`
        collection is not known to inherit its ACL, so the grants run again on a schedule; with
        the iconik webhook this is the fallback, without it the bound. One replica queues it (the
        job's lease)."""
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            if not self.leases.holds(REGRANT):
                continue
            try:
                await self.engine.request_access_sync()
            except Exception:
                log.warning("sync: could not queue the periodic grants run", exc_info=True)

    async def _reconcile_periodically(self) -> None:
        """The policy's `reconcile.interval_seconds`: report (or repair) drift on a schedule; the
        last report is at GET /admin/api/reconcile. One replica runs it (the job's lease)."""
        from .reconcile import Reconciler

        config = self.engine.policy.reconcile
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=config.interval_seconds)
                return
            except TimeoutError:
                pass
            if not self.leases.holds(RECONCILE):
                continue
            try:
                quarantine = self.engine.quarantine  # a quarantined target gets nothing but its probe
                targets = {n: t for n, t in self.engine.targets.items() if not await quarantine.blocks(n)}
                drift = await Reconciler(self.engine.store, self.engine.policy, targets).run(config.repair)
                if drift:
                    log.warning("reconcile: %d difference(s)%s", len(drift), ", repaired" if config.repair else "")
                    kinds = Counter(f"{d.target} {d.kind}" for d in drift)
                    self.notifier.send(
                        "reconcile.drift",
                        None,
                        {"differences": len(drift), "repaired": config.repair, "kinds": dict(sorted(kinds.items()))},
                    )
            except Exception:
                log.warning("reconcile: periodic run failed", exc_info=True)

    # quarantine and notifications --------------------------------------------------------------
    def _observe_calls(self) -> None:
        """Every target call of the tasks started here is also told to the quarantine's window
        (before the audit trail's observer, which app.py set)."""
        previous = CALL_OBSERVER.get()
        if getattr(previous, "quarantine_observer", False):
            return  # started again: already in place
        quarantine = self.engine.quarantine

        async def observe(call: TargetCall) -> None:
            try:
                await quarantine.observe(call)
            except StoreUnavailable:
                pass  # the call itself already happened; the next ones are judged once the store is back
            except Exception:
                log.warning("quarantine: could not judge a target call", exc_info=True)
            if previous is not None:
                await previous(call)

        observe.quarantine_observer = True  # type: ignore[attr-defined]
        CALL_OBSERVER.set(observe)

    async def _brake_engaged(self, target: str, reason: str) -> None:
        self.notifier.send("brake.engaged", target, {"reason": reason})

    async def _resumed(self, target: str) -> None:
        await self.engine.request_access_sync()  # its grants were skipped while it was quarantined

    async def _watch(self) -> None:
        """Probe quarantined targets on their schedule and release what they parked; count dead
        letters; verify the audit chain on its schedule (sync/notify.py)."""
        CORRELATION_ID.set("quarantine-probe")  # the probes' audit entries say what they were
        quarantine, notify = self.engine.policy.safety.quarantine, self.engine.policy.notify
        tick = max(0.05, min(1.0, min(quarantine.probe_backoff_seconds) / 4))
        probes = {name: target.probe for name, target in self.engine.targets.items()}
        next_count = 0.0
        while not self._stop.is_set():
            try:
                await self.engine.quarantine.tick(probes)
                if notify.dead_letters_above is not None and time.monotonic() >= next_count:
                    next_count = time.monotonic() + notify.dead_letters_check_seconds
                    await self._count_dead_letters(notify.dead_letters_above)
                if notify.audit_verify_seconds:
                    await self._verify_audit(notify.audit_verify_seconds)
            except StoreUnavailable:
                pass
            except Exception:
                log.warning("sync: watch loop failed", exc_info=True)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=tick)
            except TimeoutError:
                pass

    async def _count_dead_letters(self, threshold: int) -> None:
        """Tell once when the dead letters pass the threshold; again only after they fell back."""
        store = self.engine.store
        count = len(await self.engine.idmap.dead_letters())
        if count <= threshold:
            await store.kv_delete("notify", "dead-letters-above")
        elif await store.kv_put("notify", "dead-letters-above", str(count).encode(), only_if_absent=True):
            log.error("sync: %d dead letters (more than %d)", count, threshold)
            self.notifier.send("dead_letters.above", None, {"count": count, "threshold": threshold})

    async def _verify_audit(self, interval: float) -> None:
        """Once per `interval` slot across replicas (a claim in the store), verify the hash chain."""
        slot = int(time.time() // interval)
        if slot == self._verified_slot:
            return
        self._verified_slot = slot
        store = self.engine.store
        if not await store.kv_put("notify", f"audit-verify:{slot}", b"1", only_if_absent=True):
            return  # another replica verifies this slot
        await store.kv_delete("notify", f"audit-verify:{slot - 1}")
        from ..audit.verification import verify_and_record

        report = await verify_and_record(store)  # the console's Overview shows it too
        metrics.AUDIT_VERIFICATIONS.labels("ok" if report.ok else "broken").inc()
        if not report.ok:
            log.error("audit: %s", report.message())
            details = {"message": report.message(), "seq": report.bad_seq, "problem": report.problem}
            self.notifier.send("audit.chain_broken", None, details)

    @property
    def running(self) -> bool:
        """Every worker loop is alive and none has been asked to stop (the readiness check)."""
        loops = self._tasks[: len(self.workers)]
        return bool(loops) and not self._stop.is_set() and not any(task.done() for task in loops)

    def begin_stop(self) -> None:
        """Draining (SIGTERM): the workers claim nothing more; what they hold finishes, or is handed
        back after their `stop_seconds` (worker.py). stop() then waits for them."""
        self._stop.set()

    async def stop(self) -> None:
        self.begin_stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.notifier.close()
        await close_targets(self.engine.targets)
