"""The TLS front: TLS for every port, accepting any client certificate and keeping its chain.

CPython's ``ssl`` aborts a handshake whose client certificate it cannot verify and (on 3.11)
cannot show the chain the client presented, yet DPS must accept self-signed device certificates
and decide in the application. So TLS is terminated here with pyOpenSSL over memory BIOs:

- the context requests a client certificate and its verify callback accepts every one, so the
  handshake never fails for the certificate itself (validation happens in ``domain/certificate_chains.py``);
- after the handshake the presented chain (leaf first, as DER) is captured, and every call into
  the inner protocol runs with it in the ``peer_chain`` context variable, which tasks created
  by that protocol (uvicorn's request tasks, the MQTT handler) inherit;
- session caching and tickets are off, so every connection is a full handshake that presents
  its chain: nothing is ever authorised from a resumed session whose chain was not seen;
- every accepted connection, HTTPS or MQTT, counts against the process's ``ConnectionLimit``
  until it is closed. One over the limit is still served TLS, so that it can be told why it is
  refused: its transport's ``over_capacity`` extra info is true, and the inner protocol answers
  its first request with "unavailable" (HTTP 503, MQTT CONNACK 3) and closes;
- a client that never reads is not waited for forever (nor is closing it, which asyncio does
  only once its buffer has drained): once that buffer backs up (the kernel's is full) or the
  connection is closed with bytes queued, they must go within ``send_timeout`` + 1 s per
  ``MIN_SEND_RATE`` bytes queued (nginx's ``send_timeout`` with a rate floor, so a byte read now
  and then does not hold it), or the connection is reset (``SO_LINGER`` 0 frees the kernel's too).

The inner protocol (uvicorn's HTTP protocol, the MQTT protocol) sees an ``asyncio.Transport``
that encrypts what it writes; it never knows TLS is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

__all__ = ["ConnectionLimit", "TlsProtocol", "fronted", "peer_chain", "server_context"]

log = logging.getLogger(__name__)

# The certificate chain (DER, leaf first) the client of the current connection presented.
peer_chain: contextvars.ContextVar[tuple[bytes, ...]] = contextvars.ContextVar("peer_chain", default=())

HANDSHAKE_TIMEOUT = 10.0
MIN_SEND_RATE = 64 * 1024  # bytes per second: what a backed-up queue must drain at, on average
_READ_SIZE = 64 * 1024
_LIMIT_LOG_INTERVAL = 60.0  # at most one "connection limit reached" warning per minute


class ConnectionLimit:
    """The connections one process holds, against its limit, shared by all of its listeners,
    and how long each may leave what it is sent untaken (``send_timeout``, the send deadline).

    Why a cap at all: every connection costs a socket, TLS state and buffers, and a flood of
    them would otherwise exhaust file descriptors and memory for everyone. A connection counts
    from accept until it is closed, whether or not it was over the limit when it came.
    """

    def __init__(self, limit: int, send_timeout: float = 30.0) -> None:
        self.limit = limit
        self.send_timeout = send_timeout
        self.open = 0
        self._quiet_until = 0.0

    def enter(self) -> bool:
        """Count a new connection; false when it is over the limit."""
        self.open += 1
        if self.open <= self.limit:
            return True
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + _LIMIT_LOG_INTERVAL
            log.warning("connection limit (%d) reached: new connections are refused", self.limit)
        return False

    def leave(self) -> None:
        self.open -= 1


def _accept_any(_conn: SSL.Connection, _cert: crypto.X509, _errno: int, _depth: int, _ok: int) -> bool:
    return True  # the application validates the chain; the handshake only proves key possession


def server_context(cert_chain: Path, key: Path) -> SSL.Context:
    """A server context that asks for (but does not require) a client certificate."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate_chain_file(str(cert_chain))
    ctx.use_privatekey_file(str(key))
    ctx.check_privatekey()
    ctx.set_verify(SSL.VERIFY_PEER, _accept_any)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    ctx.set_session_id(b"provisiond")
    return ctx


def _der_chain(conn: SSL.Connection) -> tuple[bytes, ...]:
    leaf = conn.get_peer_certificate(as_cryptography=True)
    if leaf is None:
        return ()
    # On the server side OpenSSL's peer chain may or may not repeat the leaf: normalise.
    rest = conn.get_peer_cert_chain(as_cryptography=True) or []
    ders = [leaf.public_bytes(Encoding.DER)]
    for cert in rest:
        der = cert.public_bytes(Encoding.DER)
        if der != ders[0]:
            ders.append(der)
    return tuple(ders)


class TlsProtocol(asyncio.Protocol):
    """The raw TCP side of one connection: handshake, decrypt, hand plaintext to the inner protocol."""

    def __init__(
        self, context: SSL.Context, inner_factory: Callable[[], asyncio.Protocol], limit: ConnectionLimit
    ) -> None:
        self._context = context
        self._inner_factory = inner_factory
        self._limit = limit
        self._send_clock: asyncio.TimerHandle | None = None
        self._send_by = 0.0  # while the send clock runs: when what is queued must have gone
        self._counted = False
        self._over_capacity = False
        self._conn: SSL.Connection | None = None
        self._raw: asyncio.Transport | None = None
        self._inner: asyncio.Protocol | None = None
        self._transport: _TlsTransport | None = None
        self._chain: tuple[bytes, ...] = ()
        self._timer: asyncio.TimerHandle | None = None

    # -- raw side -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._raw = transport
        self._counted = True
        self._over_capacity = not self._limit.enter()
        # Nagle off (asyncio does so only when the socket's proto says TCP, which an inherited one's
        # may not): else a response written as head then body waits ~40 ms for a delayed ACK.
        _tcp_option(transport, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = SSL.Connection(self._context, None)
        self._conn.set_accept_state()
        self._timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or self._raw is None:
            return
        conn.bio_write(data)
        if self._inner is None:
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                self._flush()
                return
            except SSL.Error as exc:
                log.debug("TLS handshake failed: %s", exc)
                self._flush()
                self._close_raw()
                return
            self._handshake_done()
        self._pump()

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            keep_open: bool | None = self._call(self._inner.eof_received)
            return keep_open
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted:
            self._counted = False
            self._limit.leave()
        if self._timer is not None:
            self._timer.cancel()
        self._stop_send_clock()
        if self._transport is not None:
            self._transport._closing = True
        if self._inner is not None:
            self._call(self._inner.connection_lost, exc)

    def pause_writing(self) -> None:
        self._start_send_clock()
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._raw is not None and not self._raw.is_closing():  # closing: all of it must go
            self._stop_send_clock()
        if self._inner is not None:
            self._inner.resume_writing()

    # -- internals ----------------------------------------------------------------------------

    def _handshake_timeout(self) -> None:
        if self._inner is None and self._raw is not None:
            self._raw.abort()

    def _handshake_done(self) -> None:
        assert self._conn is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._chain = _der_chain(self._conn)
        self._flush()
        self._transport = _TlsTransport(self)
        self._inner = self._inner_factory()
        self._call(self._inner.connection_made, self._transport)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call into the inner protocol with this connection's chain in ``peer_chain``."""
        token = peer_chain.set(self._chain)
        try:
            return fn(*args)
        finally:
            peer_chain.reset(token)

    def _pump(self) -> None:
        conn = self._conn
        assert conn is not None
        # Once the inner protocol has closed its transport it is done with the connection: what
        # the peer sent after that is dropped, not fed to a protocol that can no longer answer
        # (uvicorn, fed more bytes after its 400 for an oversized head, raised and asyncio
        # logged the traceback).
        while self._inner is not None and not self._inner_closed():
            try:
                chunk = conn.recv(_READ_SIZE)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:  # the peer sent close_notify
                self._flush()
                if not self._call(self._inner.eof_received):
                    self._close_raw()
                return
            except SSL.Error as exc:
                log.debug("TLS error: %s", exc)
                if self._raw is not None:
                    self._raw.abort()
                return
            self._call(self._inner.data_received, chunk)
        self._flush()

    def _inner_closed(self) -> bool:
        return self._transport is not None and self._transport._closing

    def _flush(self) -> None:
        conn, raw = self._conn, self._raw
        if conn is None or raw is None:
            return
        while True:
            try:
                data = conn.bio_read(_READ_SIZE)
            except SSL.WantReadError:
                return
            if not data or raw.is_closing():
                return
            if self._send_clock is not None:
                self._send_by += len(data) / MIN_SEND_RATE
            raw.write(data)

    def _close_raw(self) -> None:  # asyncio closes once its buffer is sent: that is timed
        if self._raw is not None:
            self._raw.close()
            if self._raw.get_write_buffer_size():
                self._start_send_clock()

    def _start_send_clock(self) -> None:
        if self._send_clock is None and self._raw is not None:
            loop = asyncio.get_running_loop()
            queued = self._raw.get_write_buffer_size()
            self._send_by = loop.time() + self._limit.send_timeout + queued / MIN_SEND_RATE
            self._send_clock = loop.call_at(self._send_by, self._send_check)

    def _send_check(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._send_by:  # more was queued since, which extended the allowance
            self._send_clock = loop.call_at(self._send_by, self._send_check)
        elif self._raw is not None:
            self._send_clock = None
            log.debug("resetting a connection whose client does not take what it is sent")
            _tcp_option(self._raw, socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._raw.abort()

    def _stop_send_clock(self) -> None:
        if self._send_clock is not None:
            self._send_clock.cancel()
            self._send_clock = None

    def _encrypt(self, data: bytes) -> None:
        if self._conn is None:
            return
        view = memoryview(data)
        while view:
            sent = self._conn.send(view[:_READ_SIZE].tobytes())
            view = view[sent:]
        self._flush()


def _tcp_option(transport: asyncio.Transport, level: int, option: int, value: int | bytes) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)


class _TlsTransport(asyncio.Transport):
    """What the inner protocol writes to: plaintext in, TLS records out on the raw transport."""

    def __init__(self, front: TlsProtocol) -> None:
        super().__init__()
        self._front = front
        self._closing = False

    @property
    def _raw(self) -> asyncio.Transport:
        assert self._front._raw is not None
        return self._front._raw

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        self._front._encrypt(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(bytes(d) for d in list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        conn = self._front._conn
        if conn is not None:
            with contextlib.suppress(SSL.Error):
                conn.shutdown()  # close_notify
            self._front._flush()
        self._front._close_raw()

    def abort(self) -> None:
        self._closing = True
        self._raw.abort()

    def is_closing(self) -> bool:
        return self._closing or self._raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sslcontext":
            return self._front._context
        if name == "peer_chain":
            return self._front._chain
        if name == "over_capacity":
            return self._front._over_capacity
        return self._raw.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._front._inner = protocol  # e.g. uvicorn upgrading a connection to WebSocket

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._front._inner is not None
        return self._front._inner


def fronted(
    context: SSL.Context, inner_cls: type[asyncio.Protocol], limit: ConnectionLimit
) -> type[asyncio.Protocol]:
    """Wrap a uvicorn protocol class (constructed with keyword arguments) behind the TLS front."""

    class Fronted(TlsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(context, lambda: inner_cls(*args, **kwargs), limit)

    Fronted.__name__ = f"TlsFronted{inner_cls.__name__}"
    return Fronted
