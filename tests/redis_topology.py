"""Redis topologies for the tests, started from Debian's binaries on free loopback ports: one server
with TLS or an ACL user, a 3-master cluster, a master + replica + Sentinel. Nothing persists
unless asked (AOF), every server lives in its own temporary directory, and stop() kills it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.live import LiveBridge, free_port

HOW_TO_GET_SENTINEL = (
    "redis-sentinel is required for the Sentinel failover test: apt-get install -y redis-sentinel "
    "(the Debian package of Redis's Sentinel; .ci/run installs it)"
)
HOW_TO_GET_REDIS = "redis-server and redis-cli are required: apt-get install -y redis-server redis-tools"


def _binary(name: str, how: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found. {how}")
    return path


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start on port {port}") from None
            time.sleep(0.03)


class Node:
    """One redis-server (or redis-sentinel) process from a config file written here."""

    def __init__(self, directives: Iterable[str], *, sentinel: bool = False, port: int | None = None) -> None:
        self.port = port or free_port()
        self.sentinel = sentinel
        self.directory = Path(tempfile.mkdtemp(prefix="scim-bridge-topology-"))
        self.directives = list(directives)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        if self.sentinel:
            binary = _binary("redis-sentinel", HOW_TO_GET_SENTINEL)
        else:
            binary = _binary("redis-server", HOW_TO_GET_REDIS)
        has_port = any(line.startswith("port ") for line in self.directives)
        config = self.directory / ("sentinel.conf" if self.sentinel else "redis.conf")
        lines = ["bind 127.0.0.1", f"dir {self.directory}", "loglevel warning", "daemonize no"]
        if not has_port:
            lines.append(f"port {self.port}")
        if not self.sentinel:
            lines += ['save ""', "appendonly no"]
        config.write_text("\n".join([*lines, *self.directives]) + "\n")
        self.process = subprocess.Popen(
            [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        _wait_listening(self.port, self.process, "redis-sentinel" if self.sentinel else "redis-server")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """kill -9 by default: no shutdown, no final AOF flush, nothing handed to a replica."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=10)

    def signal(self, sig: int) -> None:
        """SIGSTOP / SIGCONT: the process freezes or resumes (a lagging replica, a paused VM)."""
        if self.process is not None:
            os.kill(self.process.pid, sig)

    def stop(self) -> None:
        self.kill()
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]


# TLS -------------------------------------------------------------------------------------------
def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, signed by it."""
    openssl = _binary("openssl", "apt-get install -y openssl")
    files = {name: directory / name for name in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt")}
    files["client.key"] = directory / "client.key"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=scim-bridge test CA")
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (directory / f"{name}.ext").write_text(extension + "\n")
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=scim-bridge test {name}")
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        )  # fmt: skip
    return files


def tls_server(certificates: dict[str, Path]) -> Node:
    """A server that speaks only TLS and demands a client certificate signed by the test CA."""
    port = free_port()
    return Node(
        [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {certificates['server.crt']}",
            f"tls-key-file {certificates['server.key']}",
            f"tls-ca-cert-file {certificates['ca.crt']}",
            "tls-auth-clients yes",
        ],
        port=port,
    ).start()


# ACL -------------------------------------------------------------------------------------------
#: The commands the store sends, directly or from its scripts (README "Redis": the ACL line).
BRIDGE_COMMANDS = (
    "ping time wait evalsha eval script|load "
    "get set del exists incr hget hmget hset hsetnx hdel hgetall hincrby "
    "smembers sadd srem zadd zrem zcard zscore zrange zrangebyscore zpopmin "
    "xadd xdel xlen xrange xrevrange xtrim"
)


def bridge_acl(user: str, password: str, prefix: str = "sb:") -> str:
    """The ACL rule of a bridge's Redis user: its keys only, the commands above only."""
    commands = " ".join(f"+{command}" for command in BRIDGE_COMMANDS.split())
    return f"user {user} on >{password} ~{prefix}* resetchannels -@all {commands}"


def acl_server(user: str, password: str) -> Node:
    """A server where the default user is off and `user` has exactly the bridge's rights."""
    return Node([bridge_acl(user, password), "user admin on >admin-pw ~* &* +@all", "user default off"]).start()


# Cluster ---------------------------------------------------------------------------------------
class Cluster:
    """Three masters, no replicas, all 16384 slots assigned (redis-cli --cluster create)."""

    def __init__(self, masters: int = 3) -> None:
        # the cluster bus defaults to port + 10000, which a free port above 55535 cannot have
        self.nodes = [
            Node(
                [
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    "cluster-node-timeout 2000",
                    f"cluster-port {free_port()}",
                ]
            )
            for _ in range(masters)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> Cluster:
        cli = _binary("redis-cli", HOW_TO_GET_REDIS)
        for node in self.nodes:
            node.start()
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 15
        while not all(n.client().execute_command("CLUSTER INFO").get("cluster_state") == "ok" for n in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


# Sentinel --------------------------------------------------------------------------------------
class Partition:
    """A TCP relay between a replica and its master that can stop delivering, as a network
    partition does: while cut, bytes either way are dropped (never delivered later, unlike a
    stopped process's socket buffer), so the replica falls behind while the master goes on."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.cut = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            self.sockets += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.cut.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            end.close()

    def close(self) -> None:
        self.listener.close()
        for end in self.sockets:
            end.close()


class SentinelGroup:
    """A master, one replica (through a Partition) and one Sentinel watching them (quorum 1)."""

    service = "scimbridge"

    def __init__(self, appendonly: str | None = None) -> None:
        persistence = [] if appendonly is None else ["appendonly yes", f"appendfsync {appendonly}"]
        persistence.append("repl-diskless-sync-delay 0")  # a replica syncs at once, not after 5 s
        self.master = Node(persistence)
        self.partition = Partition(self.master.port)
        self.replica = Node([*persistence, f"replicaof 127.0.0.1 {self.partition.port}"])
        self.sentinel = Node(
            [
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1",
                f"sentinel down-after-milliseconds {self.service} 1000",
                # also how long the Sentinel tolerates a replica that names another master address
                # (the partition's) before it "fixes" it: longer than any test here
                f"sentinel failover-timeout {self.service} 60000",
            ],
            sentinel=True,
        )

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.service}"

    def start(self) -> SentinelGroup:
        _binary("redis-sentinel", HOW_TO_GET_SENTINEL)
        self.master.start()
        self.replica.start()
        self._until(lambda: self.replica.client().info("replication").get("master_link_status") == "up", "replication")
        self.sentinel.start()
        self._until(lambda: len(self.sentinel.client().sentinel_slaves(self.service)) == 1, "the Sentinel's replica")
        return self

    def master_port(self) -> int:
        host, port = self.sentinel.client().sentinel_get_master_addr_by_name(self.service)
        return int(port)

    def fail_over(self, timeout: float = 15.0) -> None:
        """SENTINEL FAILOVER (forced, no quorum needed), then wait until the replica is master."""
        old = self.master_port()
        self._until(self._ask_failover, "a replica the Sentinel may promote", timeout)
        self._until(lambda: self.master_port() != old, "the failover", timeout)
        self._until(lambda: self.replica.client().info("replication")["role"] == "master", "the promotion", timeout)

    def _ask_failover(self) -> bool:
        """True once the Sentinel accepted; NOGOODSLAVE while it has not yet seen the replica healthy."""
        try:
            self.sentinel.client().execute_command("SENTINEL", "FAILOVER", self.service)
            return True
        except redis.ResponseError as error:
            if "NOGOODSLAVE" in str(error):
                return False
            raise

    @staticmethod
    def _until(check: object, what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in (self.sentinel, self.replica, self.master):
            node.stop()
        self.partition.close()


# SCIM write load -------------------------------------------------------------------------------
@dataclass
class Load:
    """POST /Users from a few threads until stopped; remembers every user a 2xx acknowledged."""

    bridge: LiveBridge
    acknowledged: list[tuple[float, str]] = field(default_factory=list)  # (time of the 2xx, id)
    statuses: Counter[int] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    unavailable: dict[str, object] | None = None  # the body of the first 503

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(4)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _write(self, writer: int) -> None:
        with self.bridge.client() as client:
            number = 0
            while not self.stop.is_set():
                number += 1
                body = {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": f"load-{writer}-{number}@example.com",
                }
                try:
                    answer = client.post("/Users", json=body)
                except httpx.HTTPError:
                    with self.lock:
                        self.statuses[0] += 1
                    continue
                with self.lock:
                    self.statuses[answer.status_code] += 1
                    if answer.status_code == 201:
                        self.acknowledged.append((time.monotonic(), answer.json()["id"]))
                    elif answer.status_code == 503 and self.unavailable is None:
                        self.unavailable = answer.json()
                if answer.status_code == 503:
                    time.sleep(0.05)  # a client backs off on 503 (Retry-After); this one briefly

    def count_after(self, moment: float) -> int:
        with self.lock:
            return sum(1 for at, _ in self.acknowledged if at > moment)

    def wait_for(self, count: int, after: float = 0.0, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count_after(after) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} writes acknowledged in {timeout} s: {dict(self.statuses)}")
            time.sleep(0.02)
