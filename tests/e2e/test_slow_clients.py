"""Slow and greedy clients against a real server: the request-head and body deadlines, the
keep-alive idle limit, the send deadline for clients that never read, the per-process connection
limit and oversized request heads.

Two servers with small settings (given as environment variables, as an operator would): one
with short timeouts, one with a connection limit of 20 and a long head deadline (its idle
connections must stay open while the limit is probed). Bounds carry seconds of margin: a
loaded 2-core machine fires timers late, never early. The send deadline on close is also
checked on the TLS front alone, where the test can see what was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import websockets

from provisiond.api.dps_device.mqtt.codec import ConnAck, Connect, PacketReader, encode
from provisiond.tls.devcert import ensure_dev_pki
from provisiond.tls.front import MIN_SEND_RATE, ConnectionLimit, TlsProtocol, server_context
from provisiond.tls.http_limits import MIN_BODY_RATE
from tests.support.mqtt import MqttTestClient
from tests.support.server import ServerProcess, start_server

HEADER_TIMEOUT = 1.5
# Above HEADER_TIMEOUT and, with its margin, below uvicorn's default of 5 s: which timer closed an
# idle connection shows.
KEEPALIVE_TIMEOUT = 2.5
KEEPALIVE_LATE = 2.3
MAX_CONNECTIONS = 20
SEND_TIMEOUT = 1.5
LATE = 3.0  # how late a timer may fire on a loaded machine
EARLY = 0.1  # each clock below starts before the server's does; this is only rounding slack

UNAUTHENTICATED = b"GET /enrollments/dev-1?api-version=2021-10-01 HTTP/1.1\r\nHost: localhost\r\n\r\n"
ONE_SHOT = UNAUTHENTICATED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
BODY_LENGTH = 90_000
BODY_ALLOWANCE = HEADER_TIMEOUT + BODY_LENGTH / MIN_BODY_RATE  # ~2.87 s for the whole body


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("timed"),
        env={
            "PROVISIOND_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "PROVISIOND_KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT),
            "PROVISIOND_SEND_TIMEOUT": str(SEND_TIMEOUT),
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


def register_head(server: ServerProcess) -> bytes:
    """A device register head announcing a body, which the route reads before it authenticates."""
    return (
        f"PUT /{server.id_scope}/registrations/slow-dev/register?api-version=2021-06-01 HTTP/1.1\r\n"
        f"Host: localhost\r\nContent-Type: application/json\r\nContent-Length: {BODY_LENGTH}\r\n\r\n"
    ).encode()


def never_reading(port: int, ca: str, payload: bytes, timeout: float) -> tuple[float, float | None]:
    """Handshake, send ``payload`` over TLS, then never read: (when it was sent, when the server
    reset the connection, or ``None`` if it still held it after ``timeout``).

    The receive buffer is set small before connecting, so the window the client advertises stays
    nearly closed. A reset is seen without reading, as the socket's pending error.
    """
    context = ssl.create_default_context(cafile=ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(4096))
        if payload:
            tls.write(payload)
        sock.sendall(outgoing.read())
        sent = time.monotonic()
        while time.monotonic() < sent + timeout:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return sent, time.monotonic()
            time.sleep(0.05)
        return sent, None


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


# -- the body deadline -------------------------------------------------------------------------


async def test_a_body_that_stops_coming_is_closed_at_the_header_timeout(timed: ServerProcess) -> None:
    reader, writer = await open_tls(timed)
    try:
        writer.write(register_head(timed) + b'{"registrationId": ')
        await writer.drain()
        sent = time.monotonic()
        data, closed_at = await until_closed(reader, HEADER_TIMEOUT + LATE + 5)
    finally:
        await close(writer)
    assert data == b"", "closed without a response"
    assert HEADER_TIMEOUT - EARLY <= closed_at - sent <= HEADER_TIMEOUT + LATE


async def test_dribbling_a_body_is_cut_off_at_its_minimum_average_rate(timed: ServerProcess) -> None:
    """A byte every 0.3 s never pauses as long as the header timeout, yet the whole body is due
    within header_timeout + length / MIN_BODY_RATE."""
    reader, writer = await open_tls(timed)
    try:
        writer.write(register_head(timed))
        await writer.drain()
        head_sent = time.monotonic()
        closed = asyncio.ensure_future(until_closed(reader, BODY_ALLOWANCE + LATE + 5))
        sent = 0
        while not closed.done() and sent < BODY_LENGTH:
            writer.write(b" ")
            sent += 1
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.drain()
            await asyncio.wait([closed], timeout=0.3)
        data, closed_at = await closed
    finally:
        await close(writer)
    assert data == b""
    assert sent >= 6, "the client kept sending until it was closed"
    assert HEADER_TIMEOUT < BODY_ALLOWANCE - EARLY <= closed_at - head_sent <= BODY_ALLOWANCE + LATE


async def test_a_body_that_pauses_less_than_the_header_timeout_is_read_and_its_clock_stops(
    timed: ServerProcess,
) -> None:
    prefix, suffix = b'{"registrationId": "slow-dev", "payload": "', b'"}'
    body = prefix + b"a" * (BODY_LENGTH - len(prefix) - len(suffix)) + suffix
    third = BODY_LENGTH // 3
    reader, writer = await open_tls(timed)
    try:
        writer.write(register_head(timed))
        await writer.drain()
        head_sent = time.monotonic()
        for start in range(0, BODY_LENGTH, third):
            if start:
                await asyncio.sleep(0.8)
            writer.write(body[start : start + third])
            await writer.drain()
        status, headers, _ = await read_response(reader)
        answered = time.monotonic()
        assert status == 401 and headers.get("connection") != "close"
        assert answered - head_sent > HEADER_TIMEOUT, "pauses are bounded, not the whole body"
        # Past the body's deadline the connection is still kept alive: the clock stopped when
        # the body was complete.
        await asyncio.sleep(max(0.0, head_sent + BODY_ALLOWANCE + 0.3 - time.monotonic()))
        writer.write(UNAUTHENTICATED)
        await writer.drain()
        assert (await read_response(reader))[0] == 401
    finally:
        await close(writer)


async def test_a_client_that_waits_for_100_continue_is_answered(timed: ServerProcess) -> None:
    head = register_head(timed).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
    reader, writer = await open_tls(timed)
    try:
        writer.write(head)
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert interim.startswith(b"HTTP/1.1 100 ")
        writer.write(b" " * BODY_LENGTH)
        await writer.drain()
        assert (await read_response(reader))[0] == 401
    finally:
        await close(writer)


async def test_a_head_that_arrives_with_the_end_of_an_answered_body_is_timed(timed: ServerProcess) -> None:
    """The service API answers 401 before it reads the body; the rest of the body then comes with
    the start of the next head, which h11 holds while the client is still IDLE to it."""
    reader, writer = await open_tls(timed)
    try:
        writer.write(
            b"PUT /enrollments/dev-1?api-version=2021-10-01 HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        )
        await writer.drain()
        status, headers, _ = await read_response(reader)
        assert status == 401 and headers.get("connection") != "close"
        writer.write(b"{}" + UNAUTHENTICATED[:20])
        await writer.drain()
        sent = time.monotonic()
        data, closed_at = await until_closed(reader, HEADER_TIMEOUT + LATE + 5)
    finally:
        await close(writer)
    assert data == b""
    assert HEADER_TIMEOUT - EARLY <= closed_at - sent <= HEADER_TIMEOUT + LATE


async def test_a_websocket_is_not_timed_as_a_request_body(timed: ServerProcess) -> None:
    """An upgrade request leaves h11 in SEND_BODY; the WebSocket that takes over is not closed."""
    context = ssl.create_default_context(cafile=timed.ca)
    url = f"wss://localhost:{timed.port}/$iothub/websocket"
    async with websockets.connect(url, ssl=context, subprotocols=["mqtt"]) as ws:
        await asyncio.sleep(HEADER_TIMEOUT + 1.5)  # past any head or body deadline
        await ws.send(
            encode(Connect("slow-dev", f"{timed.id_scope}/registrations/slow-dev/api-version=2019-03-31"))
        )
        packets = PacketReader().feed(await asyncio.wait_for(ws.recv(), timeout=10))
    assert packets and isinstance(packets[0], ConnAck)


# -- the send deadline -------------------------------------------------------------------------


async def test_a_client_that_never_reads_its_answers_is_reset_at_the_send_deadline_and_others_are_served(
    timed: ServerProcess,
) -> None:
    # A large answer: the DPS service API's OpenAPI document, for the owner's token.
    token = timed.service_sas(600)
    get = f"GET /openapi/dps-service.json HTTP/1.1\r\nHost: localhost\r\nAuthorization: {token}\r\n".encode()
    reader, writer = await open_tls(timed)
    try:
        writer.write(get + b"Connection: close\r\n\r\n")
        await writer.drain()
        status, _, document = await read_response(reader)
    finally:
        await close(writer)
    assert status == 200 and len(document) > 10_000, "the test needs a large answer"
    # Pipelined, far more than the kernel's buffers hold (the server's send buffer grows to 4 MB).
    request = get + b"\r\n"
    payload = request * math.ceil(8 * 1024 * 1024 / len(document))
    stuck = asyncio.ensure_future(asyncio.to_thread(never_reading, timed.port, timed.ca, payload, 30))
    served = []
    while not stuck.done():
        start = time.monotonic()
        status, _ = await one_request(timed)
        served.append((status, time.monotonic() - start))
        await asyncio.sleep(0.2)
    sent, reset_at = await stuck
    assert reset_at is not None, "the server still held a client that never reads"
    # Its clock starts when its buffer backs up, with at most ~two 64 KiB writes queued.
    allowance = SEND_TIMEOUT + 2 * 64 * 1024 / MIN_SEND_RATE
    assert SEND_TIMEOUT - EARLY <= reset_at - sent <= allowance + LATE
    assert len(served) >= 3 and {status for status, _ in served} == {401}
    assert max(took for _, took in served) < 3


class _AnswersAndCloses(asyncio.Protocol):
    """An inner protocol that writes ``size`` bytes as soon as the handshake is done and closes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queued = 0
        self.closed_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        # A fixed small send buffer turns the kernel's autotuning off: what the client does not
        # take stays queued in asyncio's buffer, where the test can see how much it is.
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.write(b"x" * self.size)
        transport.close()
        self.queued = transport.get_write_buffer_size()
        self.closed_at = time.monotonic()


async def test_the_front_resets_a_closed_connection_whose_queued_bytes_are_not_taken(tmp_path: Path) -> None:
    """asyncio closes a transport only once its buffer is sent; the front times that too."""
    pki = ensure_dev_pki(tmp_path, datetime.now(UTC))
    context = server_context(pki.server_chain, pki.server_key)
    inner = _AnswersAndCloses(256 * 1024)
    limit = ConnectionLimit(10, send_timeout=1.0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: TlsProtocol(context, lambda: inner, limit), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        _, reset_at = await asyncio.to_thread(never_reading, port, str(pki.ca_cert), b"", 20)
    finally:
        server.close()
        await server.wait_closed()
    assert reset_at is not None, "the front still held a closed connection its client never read"
    assert inner.queued > 128 * 1024, "most of the answer was still queued at close"
    due = inner.closed_at + limit.send_timeout + inner.queued / MIN_SEND_RATE
    assert due - EARLY <= reset_at <= due + LATE


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
