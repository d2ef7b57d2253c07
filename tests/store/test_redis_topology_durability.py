"""What a 2xx is worth when one Redis server is killed with SIGKILL right after acknowledged
writes and restarted from its own files: no persistence, AOF with fsync every second, AOF with
fsync on every write (README "Redis": durability). A process crash, not a power cut: what
Redis had handed to the kernel survives it either way; what only fsync protects against (the
host itself going down) a test on one machine cannot show, and the README says so."""

from __future__ import annotations

import time

import pytest

from scim_bridge.store.redis_keys import RedisKeys
from tests.live import LiveBridge
from tests.redis_topology import Load, Node


@pytest.mark.parametrize("appendfsync", [None, "everysec", "always"])
def test_acknowledged_writes_after_kill_9_and_restart(appendfsync: str | None) -> None:
    persistence = [] if appendfsync is None else ["appendonly yes", f"appendfsync {appendfsync}"]
    server = Node(persistence).start()
    try:
        with LiveBridge(f"redis://127.0.0.1:{server.port}/0", sync_workers=0) as bridge, Load(bridge) as load:
            load.wait_for(300)
            server.kill()  # kill -9 while the writers are still writing
            killed = time.monotonic()
            server.start()  # the same directory: it loads its AOF, if any
            load.wait_for(20, after=killed)  # and the bridge answers again by itself
        assert set(load.statuses) <= {201, 503}, load.statuses
        ids = [id for at, id in load.acknowledged if at <= killed]
        keys = RedisKeys()
        with server.client() as client:
            pipe = client.pipeline(transaction=False)
            for id in ids:
                pipe.exists(keys.resource("User", id))
            lost = sum(1 for found in pipe.execute() if not found)
        print(f"\nappendfsync={appendfsync}: {len(ids)} acknowledged before the kill, {lost} lost")
        if appendfsync is None:
            assert lost == len(ids)  # nothing persisted: the measurement can see a loss
        else:
            assert lost == 0
    finally:
        server.stop()
