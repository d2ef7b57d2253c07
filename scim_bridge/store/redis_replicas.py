"""Durability on Redis (SCIM_BRIDGE_REDIS_MIN_REPLICAS, README "Redis"): a write, then WAIT on
the same connection, in one round trip; fewer replica acknowledgements than asked within the
timeout answer StoreUnavailable (a 503).

WAIT is not a rollback: the write did run on the master. So the 503 says "not known to be
durable", and a retried POST may meet its own 409 (the same holds of WAIT everywhere). On a
cluster WAIT names no key, so it is sent to the node that owns the write's slot. On one server with
the lean connection (redis_lean.py) the script and its WAIT go out together on that connection, in
one write: WAIT then also covers the writes of other calls sent before it, never fewer."""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoScriptError

from .base import StoreUnavailable
from .redis_connect import RedisLink, RedisOptions
from .redis_fence import _is_late
from .redis_lean import LeanRedis, Script, pack


async def cluster_node(link: RedisLink, key: str | bytes) -> Any:
    """The cluster node that owns `key`'s slot (the client learns the slots on first use)."""
    client: Any = link.client
    await client.initialize()  # a no-op once initialised
    return client.get_node_from_key(key)


class ReplicaWait:
    def __init__(self, link: RedisLink, options: RedisOptions) -> None:
        self.link = link
        self.wanted = options.min_replicas
        self.timeout = options.min_replicas_timeout

    async def script(self, script: Any, keys: list[str | bytes], args: list[Any]) -> Any:
        """A registered script (redis-py's Script), acknowledged."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.command(keys[0], command)
        except NoScriptError:  # a restarted or new master: load the script, then once more
            await self.link.client.script_load(script.script)
            return await self.command(keys[0], command)

    async def command(self, route_key: str | bytes, command: tuple[Any, ...]) -> Any:
        """One command and WAIT behind it, pipelined; its reply once acknowledged."""
        pipe: Any = self.link.client.pipeline(transaction=False)
        pipe.execute_command(*command)
        wait = ("WAIT", self.wanted, int(self.timeout * 1000))
        if self.link.cluster:
            pipe.execute_command(*wait, target_nodes=await cluster_node(self.link, route_key))
        else:
            pipe.execute_command(*wait)
        result, acknowledged = await pipe.execute(raise_on_error=False)
        return self._acknowledged(result, acknowledged)

    async def lean_script(self, lean: LeanRedis, script: Script, keys: list[str | bytes], args: list[Any]) -> Any:
        """The same over the lean connection: the script and WAIT in one write."""
        wait = pack("WAIT", self.wanted, int(self.timeout * 1000))
        result, acknowledged = await lean.call(script.call(keys, args) + wait, 2)
        if isinstance(result, NoScriptError):  # load it, run it, WAIT: still one round trip
            loaded, result, acknowledged = await lean.call(script.load() + script.call(keys, args) + wait, 3)
            if isinstance(loaded, BaseException):
                raise loaded
        return self._acknowledged(result, acknowledged)

    def _acknowledged(self, result: Any, acknowledged: Any) -> Any:
        for reply in (result, acknowledged):
            if isinstance(reply, BaseException):
                raise reply
        if not _is_late(result) and int(acknowledged) < self.wanted:
            raise StoreUnavailable(
                f"redis: the write reached {acknowledged} of {self.wanted} replicas within "
                f"{self.timeout:g} s (SCIM_BRIDGE_REDIS_MIN_REPLICAS)"
            )
        return result
