"""One transport write per answer (web/server.py `_HeadWithBody`): uvicorn's cycle writes a
response's head and its body apart, each a send() of its own under uvloop. The head of an answer
of known length now goes out with its body; a streamed answer's head still goes out at once, a
HEAD answer still has no body, and an app failing after its start still leaves the head on the
wire before the close, as uvicorn does.

The protocol is driven here with a transport that records each write (as uvicorn's own protocol
tests do), and once over a real socket with the bridge itself."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from scim_bridge.app import create_app
from scim_bridge.config import Settings
from scim_bridge.web.server import HttpLimits, protocol_class, server_config
from tests.live import TOKEN, free_port

App = Callable[[Scope, Receive, Send], Awaitable[None]]
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


class RecordingTransport(asyncio.Transport):
    """Each write as the kernel would get it (writelines is one send of all its parts)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: Any) -> None:
        if data:
            self.writes.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Connection:
    """The bridge's protocol (web/server.py) on a recording transport, serving `app`."""

    def __init__(self, app: App) -> None:
        self.loop = asyncio.get_running_loop()
        self.state = ServerState()
        config = Config(app=app, http=protocol_class(HttpLimits()), lifespan="off", log_level="warning")
        config.load()
        self.protocol: Any = config.http_protocol_class(
            config=config, server_state=self.state, app_state={}, _loop=self.loop
        )
        self.transport = RecordingTransport()
        self.protocol.connection_made(self.transport)

    async def request(self, raw: bytes) -> list[bytes]:
        """Feed a request, let its app run to the end; the writes it caused."""
        before = len(self.transport.writes)
        self.protocol.data_received(raw)
        await self.settled()
        return self.transport.writes[before:]

    async def settled(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)
            if not self.state.tasks:
                return
        raise AssertionError("the app did not finish")


def get(path: str = "/", method: str = "GET", extra: bytes = b"") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n"


async def fixed(scope: Scope, receive: Receive, send: Send) -> None:
    body = b'{"id":"1"}'
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def test_an_answer_of_known_length_is_one_write_head_and_body() -> None:
    connection = Connection(fixed)
    writes = await connection.request(get())
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b'\r\n\r\n{"id":"1"}')
    # keep-alive as before: the next request on the connection is answered the same way
    again = await connection.request(get("/again"))
    assert len(again) == 1 and again[0].endswith(b'{"id":"1"}') and not connection.transport.closed


async def test_a_close_answer_is_one_write_then_the_close() -> None:
    connection = Connection(fixed)
    writes = await connection.request(get(extra=b"Connection: close\r\n"))
    assert len(writes) == 1 and b"connection: close\r\n" in writes[0] and writes[0].endswith(b'{"id":"1"}')
    assert connection.transport.closed


async def test_a_body_in_parts_goes_out_with_the_head_then_part_by_part() -> None:
    async def parts(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})

    writes = await Connection(parts).request(get())
    assert len(writes) == 2 and writes[0].endswith(b"\r\n\r\nabc") and writes[1] == b"def"


async def test_a_streamed_answer_sends_its_head_before_its_first_part() -> None:
    go_on = asyncio.Event()

    async def streamed(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await go_on.wait()  # an event stream waiting for its first event
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    connection = Connection(streamed)
    connection.protocol.data_received(get())
    for _ in range(10):
        await asyncio.sleep(0)
    head = connection.transport.writes
    assert len(head) == 1 and head[0].startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head[0]
    go_on.set()
    await connection.settled()
    assert connection.transport.writes[1:] == [b"9\r\ndata: 1\n\n\r\n", b"0\r\n\r\n"]


async def test_a_head_request_gets_its_head_only_and_the_connection_stays_open() -> None:
    connection = Connection(fixed)
    writes = await connection.request(get(method="HEAD"))
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(b"\r\n\r\n")
    assert b"content-length: 10" in writes[0] and not connection.transport.closed
    assert b"".join(await connection.request(get())).endswith(b'{"id":"1"}')


async def test_an_app_failing_after_its_start_leaves_the_head_then_closes() -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("boom after the start")

    connection = Connection(fails)
    writes = await connection.request(get())
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(b"\r\n\r\n")
    assert connection.transport.closed


async def test_an_app_failing_before_its_start_gets_the_500_in_one_write() -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom before the start")

    connection = Connection(fails)
    writes = await connection.request(get())
    assert (
        writes == [writes[0]] and writes[0].startswith(b"HTTP/1.1 500") and writes[0].endswith(b"Internal Server Error")
    )


async def test_100_continue_is_written_before_the_answer() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    connection = Connection(echo)
    connection.protocol.data_received(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    for _ in range(10):
        await asyncio.sleep(0)
    assert connection.transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    writes = await connection.request(b"hello")
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(b"\r\n\r\nhello")


async def test_a_large_body_goes_out_whole_after_its_head() -> None:
    big = b"x" * (1 << 20)

    async def large(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(big))]})
        await send({"type": "http.response.body", "body": big})

    writes = await Connection(large).request(get())
    assert len(writes) == 1 and writes[0].endswith(b"\r\n\r\n" + big)


# -- over a real socket, the bridge itself ------------------------------------------------------


class Writes:
    """The sizes of the sends a server's connections made, shared with the server thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sizes: list[int] = []


def counting_protocol(writes: Writes) -> type[asyncio.Protocol]:
    base: Any = protocol_class(HttpLimits())

    class Counting(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            real_write, real_writelines = transport.write, transport.writelines

            def write(data: Any) -> None:
                if data:
                    with writes.lock:
                        writes.sizes.append(len(data))
                real_write(data)

            def writelines(parts: Any) -> None:
                parts = list(parts)
                with writes.lock:
                    writes.sizes.append(sum(len(p) for p in parts))
                real_writelines(parts)

            transport.write, transport.writelines = write, writelines  # type: ignore[method-assign]
            super().connection_made(transport)

    return Counting


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_the_bridge_answers_a_get_and_a_filter_with_one_send_each(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store == "sqlite":
        url = f"sqlite:///{tmp_path}/one-write.db"
    else:
        import redis as redis_py

        url = request.getfixturevalue("redis_url")
        with redis_py.Redis.from_url(url) as admin:
            admin.flushdb()
    port = free_port()
    settings = Settings(store=url, host="127.0.0.1", port=port, tokens=[TOKEN])
    writes = Writes()
    server = uvicorn.Server(
        server_config(
            create_app(settings), settings, http=counting_protocol(writes), log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the bridge did not start"
        time.sleep(0.02)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/scim/v2", headers=headers, timeout=10) as scim:
            created = scim.post("/Users", json={"schemas": [USER], "userName": "one@example.com"})
            assert created.status_code == 201
            user_id = created.json()["id"]
            answers = []
            for path, params in ((f"/Users/{user_id}", None), ("/Users", {"filter": 'userName eq "one@example.com"'})):
                with writes.lock:
                    writes.sizes.clear()
                answer = scim.get(path, params=params)
                with writes.lock:
                    answers.append((answer, list(writes.sizes)))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # HEAD, then GET, one connection
            sock.sendall(
                b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    (got, got_sends), (found, found_sends) = answers
    assert got.status_code == 200 and got.json()["id"] == user_id and got.headers["etag"]
    assert found.status_code == 200 and found.json()["totalResults"] == 1
    assert len(got_sends) == 1 and got_sends[0] == len(got.content) + _head_size(got)
    assert len(found_sends) == 1 and found_sends[0] == len(found.content) + _head_size(found)
    head_answer, _, get_answer = raw.partition(b"\r\n\r\n")  # the HEAD answer has no body
    assert head_answer.startswith(b"HTTP/1.1 200") and b"content-length: 28" in head_answer
    assert get_answer.startswith(b"HTTP/1.1 200") and get_answer.endswith(b'{"status":"ok","store":"ok"}')


def _head_size(response: httpx.Response) -> int:
    lines = [b"HTTP/1.1 %d %s\r\n" % (response.status_code, response.reason_phrase.encode())]
    lines += [b"%s: %s\r\n" % (k, v) for k, v in response.headers.raw]
    return len(b"".join(lines)) + 2
