"""One client for every Redis topology the store runs on, built from the store URL and options.

    redis://[user:password@]host:port/db          one server (also unix:///path.sock)
    rediss://…                                    the same over TLS
    redis+sentinel://host:port[,host:port]/name   the master Sentinel names `name` (rediss+sentinel: TLS)
    redis+cluster://host:port[,host:port]         a Redis Cluster, from any of its nodes (rediss+cluster: TLS)

Everything else stays one code path: the store sends the same scripts and commands to whichever
client this returns. Sentinel: redis-py's SentinelConnectionPool asks the Sentinels for the master
on every new connection, and a connection to a demoted master fails (READONLY becomes a
ConnectionError), so after a failover the store's usual re-send reaches the new master. A warm
pool opens no new connection, though, and an old master that is still up goes on accepting
writes until the Sentinels demote it (seconds later; writes it took are then discarded): so
follow_master asks the Sentinels every MASTER_POLL seconds and moves every connection over. And
redis-py (8.1) re-opens a dropped connection inside a command's retry to the address it had, not
the one the Sentinels name: measured here, writes acknowledged by a killed master that restarted
empty before the Sentinels demoted it. So the store's connections ask the Sentinels on every
(re)connect (_sentinel_connection_classes).
Cluster: every key carries the deployment's hash tag (redis_keys.py), so each script and
pipeline goes to the one node that owns the slot, and MOVED after a failover is followed by
redis-py. Neither needs SELECT: a Sentinel URL may name a database (`/name/db`), a cluster has only 0.

Credentials: the password comes from the password file, else SCIM_BRIDGE_REDIS_PASSWORD, else the
URL; the file is read when the store opens, so a rotated secret takes effect on restart. The URL
is logged with its password redacted (redaction.py), the option and file never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from .redis_fence import SEND_TIMEOUT
from .redis_keys import DEFAULT_CLUSTER_PREFIX, DEFAULT_PREFIX, RedisKeys, hash_tag

if TYPE_CHECKING:  # redis-py is imported when a Redis store opens, not by every import of store/
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel

#: Seconds between two questions to the Sentinels "who is the master?" (a failover is noticed
#: within this, plus the Sentinels' own delay).
MASTER_POLL = 0.25

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")


@dataclass(frozen=True)
class RedisOptions:
    """Connection settings that do not fit in a URL (config.py: SCIM_BRIDGE_REDIS_*)."""

    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None  # client certificate (Redis's tls-auth-clients)
    tls_key_file: Path | None = None
    tls_check_hostname: bool = True
    sentinel_password: str | None = None  # the Sentinels' own `requirepass`, if any
    key_prefix: str | None = None  # default: sb: (plain, Sentinel) or {sb}: (cluster)
    min_replicas: int = 0  # writes wait for this many replica acknowledgements (WAIT) before a 2xx
    min_replicas_timeout: float = 1.0  # seconds; past it the write answers 503


@dataclass
class RedisLink:
    """The opened client, what kind of topology it speaks to, and the key names to use."""

    client: aioredis.Redis | RedisCluster
    cluster: bool
    keys: RedisKeys
    sentinel: Sentinel | None = None

    async def follow_master(self) -> None:
        """Until cancelled: when the Sentinels name another master, idle connections close at
        once and busy ones when they are released (the next command goes to the new master)."""
        import asyncio

        if self.sentinel is None:
            return
        pool: Any = cast(Any, self.client).connection_pool  # a SentinelConnectionPool
        while True:
            await asyncio.sleep(MASTER_POLL)
            before = pool.master_address
            try:
                after = await pool.get_master_address()  # closes idle connections on a change
            except Exception:  # no Sentinel answers: the commands themselves will say so (503)
                continue
            if before is not None and after != before:
                await pool.update_active_connections_for_reconnect()


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    """The (host, port) pairs of `h1:p1,h2:p2` (an IPv6 host in brackets)."""
    hosts = []
    for item in (part.strip() for part in netloc.split(",") if part.strip()):
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, _, port = item.partition(":")
        hosts.append((host or "127.0.0.1", int(port) if port else default_port))
    return hosts


def _credentials(userinfo: str, options: RedisOptions) -> tuple[str | None, str | None]:
    user, _, password = userinfo.partition(":")
    username = options.username or unquote(user) or None
    secret = unquote(password) or None
    if options.password:
        secret = options.password
    if options.password_file:
        try:
            secret = options.password_file.read_text().strip()
        except OSError as error:
            raise OSError(f"SCIM_BRIDGE_REDIS_PASSWORD_FILE: cannot read it ({error.strerror})") from None
    return username, secret


def _tls(options: RedisOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": options.tls_check_hostname}
    if options.tls_ca_file:
        kwargs["ssl_ca_certs"] = str(options.tls_ca_file)
    if options.tls_cert_file:
        kwargs["ssl_certfile"] = str(options.tls_cert_file)
    if options.tls_key_file:
        kwargs["ssl_keyfile"] = str(options.tls_key_file)
    return kwargs


def _sentinel_connection_classes() -> tuple[type[Any], type[Any]]:
    """Sentinel-managed connections (plain, TLS) that ask for the master on every socket open."""
    from redis.asyncio.connection import SSLConnection
    from redis.asyncio.sentinel import SentinelManagedConnection

    class MasterConnection(SentinelManagedConnection):
        async def _connect(self) -> None:
            if self.connection_pool.is_master:
                self.host, self.port = await self.connection_pool.get_master_address()
            await super()._connect()  # type: ignore[no-untyped-call]

    class MasterSSLConnection(MasterConnection, SSLConnection):
        pass

    return MasterConnection, MasterSSLConnection


def validate(url: str, options: RedisOptions) -> None:
    """Raise ValueError for a combination that cannot work, before anything connects."""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(f"SCIM_BRIDGE_STORE: unsupported Redis URL scheme {scheme!r} (one of {', '.join(SCHEMES)})")
    tls_files = options.tls_ca_file or options.tls_cert_file or options.tls_key_file
    if tls_files and not scheme.startswith("rediss"):
        raise ValueError(
            "SCIM_BRIDGE_REDIS_TLS_*_FILE are set but SCIM_BRIDGE_STORE is not rediss:// (or rediss+sentinel/+cluster)"
        )
    if options.password_file is not None and not options.password_file.is_file():
        raise ValueError(f"SCIM_BRIDGE_REDIS_PASSWORD_FILE: no such file {options.password_file}")
    if bool(options.tls_cert_file) != bool(options.tls_key_file):
        raise ValueError(
            "a client certificate needs both SCIM_BRIDGE_REDIS_TLS_CERT_FILE and SCIM_BRIDGE_REDIS_TLS_KEY_FILE"
        )
    if scheme.endswith("+cluster"):
        if options.key_prefix is not None and hash_tag(options.key_prefix) is None:
            raise ValueError(
                "SCIM_BRIDGE_REDIS_KEY_PREFIX: on a Redis Cluster the prefix needs a hash tag, e.g. {sb-prod}:"
            )
        if urlsplit(url).path.strip("/") not in ("", "0"):
            raise ValueError("SCIM_BRIDGE_STORE: a Redis Cluster has only database 0 (no SELECT)")


def connect(url: str, options: RedisOptions) -> RedisLink:
    """Build the client (it connects lazily, on the first command)."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError

    validate(url, options)
    scheme = url.split(":", 1)[0].lower()
    common: dict[str, Any] = {
        "socket_connect_timeout": 2,
        "socket_timeout": SEND_TIMEOUT,
        "health_check_interval": 15,
        "decode_responses": False,
    }
    if scheme.startswith("rediss"):
        common.update(_tls(options))
    parts = urlsplit(url)
    userinfo, _, netloc = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo, options)
    retry = Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))
    if scheme.endswith("+cluster"):
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in _hosts(netloc, 6379)],
            username=username,
            password=password,
            ssl=scheme.startswith("rediss"),
            retry=retry,
            **common,
        )
        return RedisLink(cluster, True, RedisKeys(options.key_prefix or DEFAULT_CLUSTER_PREFIX))
    keys = RedisKeys(options.key_prefix or DEFAULT_PREFIX)
    if scheme.endswith("+sentinel"):
        service, _, db = parts.path.strip("/").partition("/")
        if not service:
            raise ValueError("a Sentinel URL names the master: redis+sentinel://host:port[,host:port]/service_name")
        ssl: dict[str, Any] = {"ssl": True} if scheme.startswith("rediss") else {}
        sentinel_kwargs = {k: v for k, v in common.items() if k.startswith(("socket_", "ssl_"))} | ssl
        if options.sentinel_password:
            sentinel_kwargs["password"] = options.sentinel_password
        # typed from redis-py 8 on, untyped before (the floor is 5.0): either way, one ignore
        sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            _hosts(netloc, 26379),
            sentinel_kwargs=sentinel_kwargs,
            username=username,
            password=password,
            db=int(db or 0),
            retry=retry,
            **ssl,
            **common,
        )
        plain_class, tls_class = _sentinel_connection_classes()
        client = sentinel.master_for(service, connection_class=tls_class if ssl else plain_class)
        return RedisLink(client, False, keys, sentinel)
    # credentials travel as arguments, not in the URL (from_url would let the URL's win)
    bare = parts._replace(netloc=netloc).geturl()
    client = aioredis.Redis.from_url(bare, username=username, password=password, retry=retry, **common)
    return RedisLink(client, False, keys)
