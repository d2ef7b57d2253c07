"""The storage contract on a 3-master Redis Cluster (redis-cli --cluster create, free ports).

Every test of tests/store/test_contract.py and test_audit_contract.py that needs only a store is
collected here again, with `store` opened on the cluster: the same scripts, pipelines and
answers as on one server. Then what only a cluster can show: all of a deployment's keys in
the one slot its hash tag names, two deployments apart, and a prefix without a tag refused.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator

import pytest

from scim_bridge.config import ConfigError, load_settings
from scim_bridge.store import STANDARD_LANE, Store, StoreUnavailable, Write
from scim_bridge.store.redis import RedisStore
from scim_bridge.store.redis_connect import RedisOptions
from tests.redis_topology import Cluster
from tests.store import test_audit_contract, test_contract


def _store_only_tests() -> dict[str, object]:
    found = {}
    for module in (test_contract, test_audit_contract):
        for name, test in vars(module).items():
            if name.startswith("test_") and list(inspect.signature(test).parameters) == ["store"]:
                found[name] = test
    return found


globals().update(_store_only_tests())  # collected here, so they take this module's `store`


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    try:
        started = Cluster().start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield started
    finally:
        started.stop()


def _flush(cluster: Cluster) -> None:
    for node in cluster.nodes:
        with node.client() as client:
            client.flushall()


@pytest.fixture
async def store(cluster: Cluster) -> AsyncIterator[Store]:
    """An opened, empty Redis store on the cluster (overrides conftest's sqlite/redis one)."""
    _flush(cluster)
    opened = RedisStore(cluster.url)
    await opened.open()
    await opened.ping()  # the client learns the slots now, not inside a test's timed first write
    try:
        yield opened
    finally:
        await opened.close()


def _keys_by_node(cluster: Cluster) -> dict[int, list[bytes]]:
    found = {}
    for node in cluster.nodes:
        with node.client() as client:
            found[node.port] = sorted(client.keys("*"))
    return found


async def test_a_deployment_lives_in_one_slot_and_two_deployments_apart(cluster: Cluster) -> None:
    _flush(cluster)
    stores = [RedisStore(cluster.url), RedisStore(cluster.url, RedisOptions(key_prefix="{sb-staging}:"))]
    for opened in stores:
        await opened.open()
    try:
        for number, opened in enumerate(stores):
            await opened.create(Write("User", "u1", b"{}", [("emails.value", "a@x")], [("username", f"ada{number}")]))
            await opened.audit_append([b"login"])
            await opened.audit_seal()
            await opened.kv_put("tokens", "t1", b"secret-hash")
            [entry] = await opened.claim("worker")
            await opened.defer(entry, 60)
            await opened.enqueue("User", "u2", STANDARD_LANE)
        # each deployment sees only its own data
        assert [await s.lookup("User", "username", f"ada{n}") for n, s in enumerate(stores)] == [["u1"], ["u1"]]
        assert await stores[0].lookup("User", "username", "ada1") == []
        with cluster.nodes[0].client() as client:
            slots = {prefix: client.execute_command("CLUSTER KEYSLOT", prefix) for prefix in ("{sb}:", "{sb-staging}:")}
        by_node = _keys_by_node(cluster)
        for prefix, slot in slots.items():
            holders = {port for port, keys in by_node.items() if any(k.startswith(prefix.encode()) for k in keys)}
            assert len(holders) == 1, f"{prefix} keys spread over nodes {holders}"
            with cluster.nodes[0].client() as client:
                keys = [k for ks in by_node.values() for k in ks if k.startswith(prefix.encode())]
                assert len(keys) >= 10 and {client.execute_command("CLUSTER KEYSLOT", k) for k in keys} == {slot}
        assert all(k.startswith((b"{sb}:", b"{sb-staging}:")) for ks in by_node.values() for k in ks)
    finally:
        for opened in stores:
            await opened.close()


def test_a_cluster_prefix_without_a_hash_tag_is_refused(cluster: Cluster) -> None:
    with pytest.raises(ConfigError, match="hash tag"):
        load_settings(store=cluster.url, redis_key_prefix="sb:")
    with pytest.raises(ConfigError, match="database 0"):
        load_settings(store=cluster.url + "/2")
    assert load_settings(store=cluster.url, redis_key_prefix="{sb-prod}:").redis_options().key_prefix == "{sb-prod}:"


async def test_min_replicas_on_a_cluster_waits_on_the_slots_node(cluster: Cluster) -> None:
    """WAIT names no key: it goes to the node that ran the write (these masters have no replica,
    so a write asking for one is answered unavailable, and one asking for none goes through)."""
    _flush(cluster)
    store = RedisStore(cluster.url, RedisOptions(min_replicas=1, min_replicas_timeout=0.1))
    await store.open()
    try:
        with pytest.raises(StoreUnavailable, match="reached 0 of 1 replicas"):
            await store.create(Write("User", "u1", b"{}", [], [("username", "ada")]))
        with pytest.raises(StoreUnavailable, match="reached 0 of 1 replicas"):
            await store.kv_put("tokens", "t", b"1")
    finally:
        await store.close()
