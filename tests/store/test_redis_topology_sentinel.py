"""A master, a replica and a Sentinel (redis-sentinel, free ports) behind one bridge under SCIM
write load: the bridge follows a forced failover and keeps answering, and what a 2xx is worth
is measured: acknowledged users missing after the failover, with and without
SCIM_BRIDGE_REDIS_MIN_REPLICAS (README "Redis": durability; the figures print with -s).

The crash: the replica falls behind (its link to the master is cut: a network blip), writes go
on, the master is killed with SIGKILL right after them, and the Sentinel promotes the replica.
Without MIN_REPLICAS every write acknowledged while the replica lagged is lost; with
MIN_REPLICAS=1 those writes answered 503 instead, and no acknowledged write is lost.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from scim_bridge.store import Write
from scim_bridge.store.redis import RedisStore
from scim_bridge.store.redis_connect import RedisOptions
from scim_bridge.store.redis_keys import RedisKeys
from tests.live import LiveBridge
from tests.redis_topology import Load, SentinelGroup


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    try:
        started = SentinelGroup().start()
    except RuntimeError as error:  # redis-sentinel missing: a failure naming the apt-get line
        pytest.fail(str(error), pytrace=False)
    yield started
    started.stop()


def _missing(group: SentinelGroup, ids: list[str]) -> int:
    keys = RedisKeys()
    with group.replica.client() as client:  # the promoted one
        pipe = client.pipeline(transaction=False)
        for id in ids:
            pipe.exists(keys.resource("User", id))
        return sum(1 for found in pipe.execute() if not found)


@pytest.mark.parametrize("min_replicas", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_a_forced_failover_under_scim_load_and_the_bridge_keeps_answering(
    group: SentinelGroup, min_replicas: int
) -> None:
    """SENTINEL FAILOVER with both servers up. For a moment both are masters (the Sentinel
    promotes the replica, announces it, and demotes the old master seconds later): what the old
    one acknowledged then is discarded when it resyncs. MIN_REPLICAS=1 refuses those writes (the
    old master has no replica left), so the 2xx stay true; the bridge answers 2xx again once the
    old master is back as a replica."""
    settings = {"redis_min_replicas": min_replicas, "redis_min_replicas_timeout_seconds": 0.3}
    with LiveBridge(group.url, sync_workers=0, **settings) as bridge, Load(bridge) as load:
        load.wait_for(50)
        group.fail_over()  # SENTINEL FAILOVER: the replica is promoted, the master demoted
        promoted = time.monotonic()
        load.wait_for(50, after=promoted, timeout=30)
    assert group.master_port() == group.replica.port
    assert set(load.statuses) <= {201, 503}, load.statuses  # an outage is a 503, never a 500
    ids = [id for _, id in load.acknowledged]
    lost = _missing(group, ids)
    print(
        f"\nforced failover, MIN_REPLICAS={min_replicas}: {len(ids)} acknowledged, {lost} lost, {dict(load.statuses)}"
    )
    if min_replicas:
        assert lost == 0


@pytest.mark.parametrize("min_replicas", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_acknowledged_writes_lost_when_the_master_dies(group: SentinelGroup, min_replicas: int) -> None:
    settings = {"redis_min_replicas": min_replicas, "redis_min_replicas_timeout_seconds": 0.3}
    with LiveBridge(group.url, sync_workers=0, **settings) as bridge, Load(bridge) as load:
        load.wait_for(50)
        group.partition.cut.set()  # the replica falls behind
        lag_started = time.monotonic()
        time.sleep(0.5)  # writes go on meanwhile
        group.master.kill()  # kill -9, right after those writes
        group.fail_over()
        promoted = time.monotonic()
        group.master.start()  # the old master comes back; the Sentinel makes it a replica
        load.wait_for(50, after=promoted)  # the bridge answers again (with MIN_REPLICAS: once a replica is back)
    assert set(load.statuses) <= {201, 503, 0}, load.statuses
    ids = [id for _, id in load.acknowledged]
    lost = _missing(group, ids)
    during_lag = sum(1 for at, _ in load.acknowledged if lag_started <= at <= promoted)
    print(
        f"\nMIN_REPLICAS={min_replicas}: {len(ids)} acknowledged, {lost} lost "
        f"({during_lag} acknowledged while the replica lagged), {dict(load.statuses)}"
    )
    if min_replicas:
        assert lost == 0
        assert load.unavailable is not None  # the lagging writes were refused, with a SCIM error body
        assert load.unavailable["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert load.unavailable["status"] == "503"
    else:
        assert lost > 0  # the measurement can see a loss: without WAIT the lagging writes are gone


async def test_min_replicas_answers_unavailable_when_no_replica_acknowledges(group: SentinelGroup) -> None:
    store = RedisStore(group.url, RedisOptions(min_replicas=1, min_replicas_timeout=0.2))
    await store.open()
    try:
        await store.create(Write("User", "u1", b"{}", [], [("username", "ada")]))
        assert await store.kv_put("tokens", "t", b"1")
        group.replica.signal(signal.SIGSTOP)
        try:
            with pytest.raises(Exception, match="reached 0 of 1 replicas") as refused:
                await store.create(Write("User", "u2", b"{}", [], [("username", "bob")]))
            assert type(refused.value).__name__ == "StoreUnavailable"
            with pytest.raises(Exception, match="reached 0 of 1"):
                await store.kv_put("tokens", "t2", b"2")
        finally:
            group.replica.signal(signal.SIGCONT)
        await store.create(Write("User", "u3", b"{}", [], [("username", "cy")]))  # acknowledged again
    finally:
        await store.close()
