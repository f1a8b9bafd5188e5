"""Slow and greedy clients against a real server: the request-head deadline, the keep-alive idle
limit, the per-process connection limit and oversized request heads.

Two servers with small settings (given as environment variables, as an operator would): one
with short timeouts, one with a connection limit of 20 and a long head deadline (its idle
connections must stay open while the limit is probed). Bounds carry seconds of margin: a
loaded 2-core machine fires timers late, never early.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisiond.api.dps_device.mqtt.codec import ConnAck, Connect
from tests.support.mqtt import MqttTestClient
from tests.support.server import ServerProcess, start_server

HEADER_TIMEOUT = 1.5
# Above HEADER_TIMEOUT and, with its margin, below uvicorn's default of 5 s: which timer closed an
# idle connection shows.
KEEPALIVE_TIMEOUT = 2.5
KEEPALIVE_LATE = 2.3
MAX_CONNECTIONS = 20
LATE = 3.0  # how late a timer may fire on a loaded machine
EARLY = 0.1  # each clock below starts before the server's does; this is only rounding slack

UNAUTHENTICATED = b"GET /enrollments/dev-1?api-version=2021-10-01 HTTP/1.1\r\nHost: localhost\r\n\r\n"
ONE_SHOT = UNAUTHENTICATED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("timed"),
        env={
            "PROVISIOND_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "PROVISIOND_KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT),
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("capped"),
        env={"PROVISIOND_MAX_CONNECTIONS": str(MAX_CONNECTIONS), "PROVISIOND_HEADER_TIMEOUT": "60"},
    )
    yield server
    server.stop()


# -- clients ----------------------------------------------------------------------------------


async def open_tls(
    server: ServerProcess, port: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection, handshake complete, nothing sent."""
    context = ssl.create_default_context(cafile=server.ca)
    return await asyncio.wait_for(
        asyncio.open_connection("localhost", port or server.port, ssl=context), timeout=10
    )


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout=5)


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed it."""
    data = b""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while chunk := await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic())):
            data += chunk
    return data, time.monotonic()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (status, lower-cased headers, body), leaving the connection open."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), timeout=10)
    return int(status_line.split()[1]), headers, body


async def one_request(server: ServerProcess, request: bytes = ONE_SHOT) -> tuple[int, dict[str, str]]:
    """Send a request on a new connection; its response, after checking the server closed it."""
    reader, writer = await open_tls(server)
    try:
        writer.write(request)
        await writer.drain()
        status, headers, _ = await read_response(reader)
        rest, _ = await until_closed(reader, 10)
        assert rest == b"", "the server must close after a Connection: close exchange"
        return status, headers
    finally:
        await close(writer)


async def dribble(server: ServerProcess, head: bytes, interval: float) -> tuple[int, float]:
    """Send ``head`` one byte per ``interval`` until the server closes: (bytes sent, seconds open)."""
    start = time.monotonic()
    reader, writer = await open_tls(server)
    closed = asyncio.ensure_future(until_closed(reader, HEADER_TIMEOUT + LATE + 5))
    sent = 0
    try:
        while not closed.done() and sent < len(head):
            writer.write(head[sent : sent + 1])
            sent += 1
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.drain()
            await asyncio.wait([closed], timeout=interval)
        data, closed_at = await closed
    finally:
        await close(writer)
    assert data == b"", "a head that never completes gets no response"
    return sent, closed_at - start


def tls_exchange(server: ServerProcess, payload: bytes, timeout: float = 10) -> bytes:
    """Send ``payload`` over TLS and return all the server answers until it closes.

    TLS runs over memory BIOs, so the server resetting the connection while ``payload`` is still
    being sent (it stops reading a head it refuses) cannot lose the answer it sent before.
    """
    context = ssl.create_default_context(cafile=server.ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        tls.write(payload)
        with contextlib.suppress(OSError):
            sock.sendall(outgoing.read())
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()
            with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
                while chunk := tls.read(65536):  # b"" once the server's close_notify is read
                    answer += chunk
            if not data:
                return answer


# -- the request-head deadline ----------------------------------------------------------------


async def test_a_connection_that_sends_nothing_after_the_handshake_is_closed_at_the_header_timeout(
    timed: ServerProcess,
) -> None:
    start = time.monotonic()
    reader, writer = await open_tls(timed)
    try:
        data, closed_at = await until_closed(reader, HEADER_TIMEOUT + LATE + 5)
    finally:
        await close(writer)
    assert data == b"", "closed without a response"
    assert HEADER_TIMEOUT - EARLY <= closed_at - start <= HEADER_TIMEOUT + LATE


async def test_dribbling_a_head_does_not_extend_the_deadline_and_others_are_served_meanwhile(
    timed: ServerProcess,
) -> None:
    head = (
        b"GET /enrollments/dev-1?api-version=2021-10-01 HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 64
    )

    async def served_meanwhile() -> list[tuple[int, float]]:
        answers = []
        for _ in range(5):
            start = time.monotonic()
            status, _ = await one_request(timed)
            answers.append((status, time.monotonic() - start))
            await asyncio.sleep(0.2)
        return answers

    *dribblers, normal = await asyncio.gather(
        *(dribble(timed, head, interval=0.5) for _ in range(8)), served_meanwhile()
    )
    for sent, open_for in dribblers:
        assert sent >= 2, "the client kept sending until it was closed"
        assert HEADER_TIMEOUT - EARLY <= open_for <= HEADER_TIMEOUT + LATE
    assert [status for status, _ in normal] == [401] * 5
    assert max(took for _, took in normal) < 3


async def test_an_idle_kept_alive_connection_is_closed_by_the_keepalive_timeout_not_the_header_one(
    timed: ServerProcess,
) -> None:
    reader, writer = await open_tls(timed)
    try:
        asked = time.monotonic()  # the server's idle clock starts after this, with its response
        writer.write(UNAUTHENTICATED)
        await writer.drain()
        status, headers, _ = await read_response(reader)
        assert status == 401 and headers.get("connection") != "close"
        data, closed_at = await until_closed(reader, KEEPALIVE_TIMEOUT + KEEPALIVE_LATE + 5)
    finally:
        await close(writer)
    assert data == b""
    # Open past the header deadline, closed before uvicorn's default keep-alive (5 s) would have:
    # the idle wait between requests is the configured keep-alive timeout.
    assert (
        HEADER_TIMEOUT
        < KEEPALIVE_TIMEOUT - EARLY
        <= closed_at - asked
        <= KEEPALIVE_TIMEOUT + KEEPALIVE_LATE
        < 5
    )


async def test_on_a_kept_alive_connection_the_next_heads_clock_starts_at_its_first_byte(
    timed: ServerProcess,
) -> None:
    reader, writer = await open_tls(timed)
    try:
        writer.write(UNAUTHENTICATED)
        await writer.drain()
        assert (await read_response(reader))[0] == 401
        await asyncio.sleep(1.0)  # idle, within the keep-alive timeout (its timer stops at the next byte)
        closed = asyncio.ensure_future(until_closed(reader, HEADER_TIMEOUT + LATE + 5))
        first_byte = time.monotonic()
        for byte in UNAUTHENTICATED[:-4]:  # never the blank line that ends the head
            if closed.done():
                break
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.drain()
            await asyncio.wait([closed], timeout=0.4)
        data, closed_at = await closed
    finally:
        await close(writer)
    assert data == b""
    assert HEADER_TIMEOUT - EARLY <= closed_at - first_byte <= HEADER_TIMEOUT + LATE


# -- the connection limit ---------------------------------------------------------------------


async def test_over_the_connection_limit_https_gets_503_and_mqtt_connack_3_until_some_close(
    capped: ServerProcess,
) -> None:
    held = [await open_tls(capped) for _ in range(MAX_CONNECTIONS)]
    try:
        status, headers = await one_request(capped)
        assert status == 503 and headers["connection"] == "close"

        mqtt = await MqttTestClient.open(capped.mqtt_port, capped.ca)
        try:
            await mqtt.send(Connect("dev-1", f"{capped.id_scope}/registrations/dev-1/api-version=2019-03-31"))
            connack = await mqtt.recv()
            assert isinstance(connack, ConnAck) and connack.return_code == 3
            assert await mqtt.closed(), "the server closes after CONNACK 3"
        finally:
            await mqtt.close()

        for _, writer in held[:5]:
            await close(writer)
        for _ in range(50):  # the server notices the closes within a few loop iterations
            status, _ = await one_request(capped)
            if status != 503:
                break
            await asyncio.sleep(0.1)
        assert status == 401, "under the limit again, requests reach the application"

        mqtt = await MqttTestClient.open(capped.mqtt_port, capped.ca)
        try:
            await mqtt.send(Connect("dev-1", f"{capped.id_scope}/registrations/dev-1/api-version=2019-03-31"))
            connack = await mqtt.recv()
            assert isinstance(connack, ConnAck) and connack.return_code == 5  # judged: no such device
        finally:
            await mqtt.close()
    finally:
        for _, writer in held[5:]:
            await close(writer)
    assert "connection limit (20) reached" in capped.log.read_text()


# -- oversized heads ----------------------------------------------------------------------------


def test_an_oversized_request_head_is_refused_without_a_traceback_in_the_log(timed: ServerProcess) -> None:
    head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    answer = tls_exchange(timed, head)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 431), answer[:200]
    assert b"connection: close" in answer.lower()
    time.sleep(0.3)  # let the server finish with the connection before its log is read
    log = Path(timed.log).read_text()
    assert "Traceback" not in log and " ERROR " not in log, log
