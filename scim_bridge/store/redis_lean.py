"""A lean Redis client for the store's hottest calls: one asyncio Protocol connection, commands
written pre-encoded (RESP), replies parsed by hiredis, many calls in flight at once.

Why: redis-py's asyncio client costs ≈ 50 µs of CPU per command (pool checkout, argument
encoding, retry and timeout wrappers, a StreamWriter write and a task wake-up per reply), most of
a Redis GET's CPU (README, "Redis reads"). Here a call appends its bytes to a buffer and a future
to a FIFO; the buffer goes out in one write at the end of the event-loop step, so the commands of
concurrent requests share one send() (and Redis reads them with one read), and replies come back
in order, each resolving the oldest future.

What it keeps of the redis-py client it stands beside (redis_connect.py builds both from one URL):
the same address, TLS context (redis-py's own, from the same ssl_* settings), AUTH (ACL user or
password) and SELECT on every (re)connect; errors as redis-py's exception classes (the store maps
them: connection-level ones to StoreUnavailable, so a 503); a connect timeout of 2 s and a reply
timeout of SEND_TIMEOUT (5 s), past which the connection is dropped, as redis-py drops a socket
that timed out; a dropped connection re-sent once at once (redis-py's Retry(…, 1)).

Does not: speak to Sentinel or Cluster (the store keeps redis-py there: the master moves, slots
move); pool connections (Redis runs one command at a time; one pipelined socket keeps up); pub/sub.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError, NoScriptError, RedisError, TimeoutError

from .redis_fence import SEND_TIMEOUT

CONNECT_TIMEOUT = 2.0

Arg = str | bytes | int | float


def pack(*args: Arg) -> bytes:
    """One command in RESP (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode()  # a float, as redis-py encodes it
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def reply_error(reply: hiredis.ReplyError) -> RedisError:
    """redis-py's exception for an error reply (NOSCRIPT, READONLY, LOADING, WRONGPASS, …)."""
    return BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call, no-any-return]


class Script:
    """A Lua script sent by its SHA1, loaded on NOSCRIPT (a restarted or flushed server)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def call(self, keys: Sequence[Arg], args: Sequence[Arg]) -> bytes:
        return pack("EVALSHA", self.sha, len(keys), *keys, *args)

    def load(self) -> bytes:
        return pack("SCRIPT", "LOAD", self.source)


class _Waiter:
    __slots__ = ("future", "count", "replies", "sent")

    def __init__(self, future: asyncio.Future[Any], count: int, sent: float) -> None:
        self.future = future
        self.count = count  # replies it waits for (a pipeline of `count` commands)
        self.replies: list[Any] = []
        self.sent = sent


class _Pipe(asyncio.Protocol):
    """One connection: a buffer of encoded commands and a FIFO of the calls awaiting replies."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, timeout: float) -> None:
        self._loop = loop
        self._name = name
        self._timeout = timeout
        self._reader = hiredis.Reader()
        self._waiters: deque[_Waiter] = deque()
        self._buffer: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.lost: BaseException | None = None  # set once the connection is gone

    # asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiters = self._waiters
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as error:
                self._drop(ConnectionError(f"Protocol error from {self._name}: {error}"))
                return
            if reply is False:
                return
            if not waiters:  # a reply nobody asked for: the stream is out of step
                self._drop(ConnectionError(f"unexpected reply from {self._name}"))
                return
            waiter = waiters[0]
            if waiter.count == 1:
                waiters.popleft()
                if not waiter.future.done():  # not cancelled by its caller's timeout
                    if isinstance(reply, hiredis.ReplyError):
                        waiter.future.set_exception(reply_error(reply))
                    else:
                        waiter.future.set_result(reply)
            else:
                waiter.replies.append(reply_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
                if len(waiter.replies) == waiter.count:
                    waiters.popleft()
                    if not waiter.future.done():
                        waiter.future.set_result(waiter.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"Connection to {self._name} lost" + (f": {exc}" if exc else "")))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    # calls --------------------------------------------------------------------------------------
    def send(self, packed: bytes, count: int = 1) -> asyncio.Future[Any]:
        """Queue `count` encoded commands; the future gets the reply (a list of `count` replies
        when count > 1, error replies in it as exceptions)."""
        future = self._loop.create_future()
        if self.lost is not None:
            future.set_exception(self.lost)
            return future
        if not self._buffer:  # the first command of this loop step: flush at its end
            self._loop.call_soon(self._flush)
        self._buffer.append(packed)
        self._waiters.append(_Waiter(future, count, self._loop.time()))
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(self._timeout, self._check)
        return future

    def _flush(self) -> None:
        if self._transport is None or self.lost is not None or not self._buffer:
            return
        data = b"".join(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer.clear()
        self._transport.write(data)

    def _check(self) -> None:
        """The oldest call waited SEND_TIMEOUT: the server hangs; drop the connection (the next
        call opens a new one), as redis-py drops a socket whose read timed out."""
        self._watchdog = None
        if not self._waiters or self.lost is not None:
            return
        due = self._waiters[0].sent + self._timeout
        if self._loop.time() >= due:
            self._drop(TimeoutError(f"Timeout reading from {self._name}"))
        else:
            self._watchdog = self._loop.call_at(due, self._check)

    def _drop(self, error: BaseException) -> None:
        self._fail(error)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, error: BaseException) -> None:
        if self.lost is None:
            self.lost = error
        self._buffer.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(error)

    def close(self) -> None:
        self._drop(ConnectionError(f"Connection to {self._name} closed"))


class LeanRedis:
    """Pipelined calls on one connection to one server, re-opened when it drops."""

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 6379,
        path: str | None = None,
        ssl: Any = None,  # an ssl.SSLContext
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._host, self._port, self._path, self._ssl = host, port, path, ssl
        self._name = path or f"{host}:{port}"
        self._handshake: list[bytes] = []
        if password is not None:
            self._handshake.append(pack("AUTH", username, password) if username else pack("AUTH", password))
        if db:
            self._handshake.append(pack("SELECT", db))
        self._timeout = timeout
        self._pipe: _Pipe | None = None
        self._opening: asyncio.Future[_Pipe] | None = None
        self._closed = False

    @classmethod
    def like(cls, client: Any) -> LeanRedis:
        """One speaking to the server a redis-py (standalone) client is set up for, the same way."""
        from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        common = {"username": kwargs.get("username"), "password": kwargs.get("password"), "db": kwargs.get("db", 0)}
        if issubclass(pool.connection_class, UnixDomainSocketConnection):
            return cls(path=kwargs["path"], **common)
        ssl = None
        if issubclass(pool.connection_class, SSLConnection):
            ssl = SSLConnection(**kwargs).ssl_context.get()  # redis-py's own context, same settings
        return cls(host=kwargs.get("host", "localhost"), port=int(kwargs.get("port", 6379)), ssl=ssl, **common)

    async def _open(self) -> _Pipe:
        loop = asyncio.get_running_loop()
        pipe = _Pipe(loop, self._name, self._timeout)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                if self._path is not None:
                    await loop.create_unix_connection(lambda: pipe, self._path)
                else:
                    await loop.create_connection(
                        lambda: pipe,
                        self._host,
                        self._port,
                        ssl=self._ssl,
                        server_hostname=self._host if self._ssl else None,
                    )
        except (OSError, TimeoutError) as error:  # "connecting to": redis_fence reads it as never sent
            raise ConnectionError(f"Error connecting to {self._name}: {error or 'timed out'}") from error
        if self._handshake:  # AUTH, SELECT: one round trip, before any call
            count = len(self._handshake)
            try:
                replies = await pipe.send(b"".join(self._handshake), count)
                for reply in replies if count > 1 else [replies]:
                    if isinstance(reply, BaseException):
                        raise reply  # WRONGPASS, NOAUTH: redis-py's AuthenticationError
            except BaseException:
                pipe.close()
                raise
        return pipe

    async def _connected(self) -> _Pipe:
        pipe = self._pipe
        if pipe is not None and pipe.lost is None:
            return pipe
        if self._opening is None:  # one connect shared by every caller that finds it closed
            self._opening = asyncio.ensure_future(self._open())
            self._opening.add_done_callback(self._opened)
        # shielded: a caller cancelled (its client went away) must not cancel the others' connect
        return await asyncio.shield(self._opening)

    def _opened(self, opening: asyncio.Future[_Pipe]) -> None:
        self._opening = None
        if not opening.cancelled() and opening.exception() is None:
            self._pipe = opening.result()
            if self._closed:  # closed while it connected
                self._pipe.close()

    async def call(self, packed: bytes, count: int = 1) -> Any:
        """Send encoded command(s) and await the reply; a connection that was dropped (the server
        restarted, a proxy cut it) is re-opened and the call sent once more."""
        pipe = self._pipe
        if pipe is None or pipe.lost is not None:  # not open, or dropped (no coroutine when it is up)
            pipe = await self._connected()
        try:
            return await pipe.send(packed, count)
        except ConnectionError as error:
            if pipe.lost is not error:  # an error reply of that class (e.g. max clients), not a drop
                raise
        return await (await self._connected()).send(packed, count)

    async def command(self, *args: Arg) -> Any:
        return await self.call(pack(*args))

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg] = ()) -> Any:
        """Run a script; on NOSCRIPT load it and run it again, in one round trip."""
        try:
            return await self.call(script.call(keys, args))
        except NoScriptError:
            loaded, result = await self.call(script.load() + script.call(keys, args), 2)
            for reply in (loaded, result):
                if isinstance(reply, BaseException):
                    raise reply from None
            return result

    async def close(self) -> None:
        self._closed = True
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
