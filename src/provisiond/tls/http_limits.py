"""uvicorn's HTTP/1.1 protocol with the limits only the HTTP layer can enforce.

**The request-head deadline.** uvicorn times one thing: the idle wait after a response
(``timeout_keep_alive``, which the first byte of anything cancels for good). A connection that
sends nothing after the TLS handshake, or dribbles a header byte every few seconds, was
therefore held forever, and a few hundred of them hold the server. As nginx's
``client_header_timeout``, the head's clock starts when the front hands the connection over (the
first request) or when the first byte of the next request arrives on a kept-alive connection,
and only a complete head stops it: bytes that arrive meanwhile do not extend it. When it fires
the connection is closed without a response.

**The body deadline.** Nothing else times a body, and the routes read it before they
authenticate, so ``Content-Length: 90000`` followed by silence held the connection (and a request
task) forever. Once the head is complete the body must keep coming: no pause longer than
``header_timeout`` (nginx's ``client_body_timeout``, which alone lets a byte every few seconds
hold a connection for hours), and all of it within ``header_timeout + length / MIN_BODY_RATE``
(the length as declared, or as received so far for a chunked body, at most ``BODY_SIZE_CAP``).
64 KiB/s: a device body (at most 96 KB, usually under 2 KB) then has ``header_timeout`` plus at
most 1.5 s, a 32 MB zero-touch upload 8.5 minutes; a client that cannot average 512 kbit/s
over megabytes is not one worth a connection. Once the request is answered, what is left of its
body gets ``header_timeout`` more at most: no one reads it (uvicorn drains it only to reuse the
connection), so declaring a length far above a route's limit, answered 413 at once, buys nothing.
h11 reporting the body complete (``EndOfMessage``) stops the clock. Time that is not the client's
is not counted: while uvicorn itself has stopped reading (the application has not yet taken the
64 KiB it buffers), and before the "100 Continue" a client that sent ``Expect: 100-continue``
waits for. On expiry the connection is closed without a response.

Together with uvicorn's keep-alive timer, the front's handshake timeout and its send deadline,
no connection waits for its client without a bound.

**Over capacity.** The TLS front marks a connection over the process's connection limit
(``over_capacity`` extra info); every request on it is answered 503 with ``connection: close``,
by uvicorn's own ``service_unavailable`` app, and it is never upgraded to a WebSocket.

(A head larger than h11's 16 KB ``max_incomplete_event_size`` is answered 400 by uvicorn itself.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.flow_control import FlowControl, service_unavailable
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BODY_SIZE_CAP", "MIN_BODY_RATE", "LimitedH11Protocol", "with_header_timeout"]

log = logging.getLogger(__name__)

MIN_BODY_RATE = 64 * 1024  # bytes per second, averaged over a whole body
BODY_SIZE_CAP = 32 * 1024 * 1024  # the largest body any route reads (zero-touch, reseller)


class LimitedH11Protocol(H11Protocol):
    """``H11Protocol`` plus the request-head and body deadlines and the over-capacity answer."""

    header_timeout: ClassVar[float] = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._over_capacity = False
        self._upgraded = False
        self._flow: _ClockedFlow | None = None
        self._body_clock: asyncio.TimerHandle | None = None
        self._body_started = 0.0  # these three on the client's clock (``_ClockedFlow.client_time``)
        self._body_last_byte = 0.0
        self._body_cutoff = float("inf")
        self._body_declared: int | None = None  # None: chunked
        self._body_received = 0

    def connection_made(  # type: ignore[override]  # as H11Protocol's own
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.flow = self._flow = _ClockedFlow(transport, self.loop)
        if transport.get_extra_info("over_capacity", False):
            self._over_capacity = True
            self.app = service_unavailable
        self._start_head_clock()

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None and self.conn.their_state is h11.IDLE:
            self._start_head_clock()  # the first byte of the next request on a kept-alive connection
        in_body = self.conn.their_state is h11.SEND_BODY
        super().data_received(data)
        if in_body and self._flow is not None:
            self._body_last_byte = self._flow.client_time()
            self._body_received += len(data)
        self._retime()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._body_clock is not None and self._flow is not None:  # answered, body still coming
            self._body_cutoff = min(self._body_cutoff, self._flow.client_time() + self.header_timeout)
        self._retime()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_clock()
        self._stop_body_clock()
        super().connection_lost(exc)

    def _should_upgrade(self) -> bool:
        return not self._over_capacity and super()._should_upgrade()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The WebSocket protocol takes the connection over (h11 still says SEND_BODY): stop timing.
        self._upgraded = True
        self._cancel_head_clock()
        self._stop_body_clock()
        super().handle_websocket_upgrade(event)

    def _retime(self) -> None:
        """Start or stop the clocks for where h11 says the client is."""
        if self._upgraded:
            return
        state = self.conn.their_state
        # h11 leaves IDLE for the client exactly when it has parsed a complete request head
        # (or failed on it, in which case uvicorn has answered 400 and is closing). Bytes h11
        # holds while the client is IDLE are a head in progress: ones that came while a response
        # was being written (parsed only once it is complete), or with the end of a body.
        if state is not h11.IDLE:
            self._cancel_head_clock()
        elif self.conn.trailing_data[0] and not self.transport.is_closing():
            self._start_head_clock()
        if state is h11.SEND_BODY:
            if self._body_clock is None:
                self._start_body_clock()
        else:
            self._stop_body_clock()

    # -- the head's clock ---------------------------------------------------------------------

    def _start_head_clock(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_clock(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            log.debug("closing a connection whose request head took over %ss", self.header_timeout)
            self.transport.close()

    # -- the body's clock ---------------------------------------------------------------------

    def _start_body_clock(self) -> None:
        assert self._flow is not None
        now = self._flow.client_time()
        self._body_started = self._body_last_byte = now
        self._body_cutoff = float("inf")
        self._body_declared = _declared_length(self.headers)
        self._body_received = 0
        delay = 0.5 if self.cycle.waiting_for_100_continue else self._body_deadline() - now
        self._body_clock = self.loop.call_later(delay, self._body_check)

    def _body_deadline(self) -> float:
        size = self._body_received if self._body_declared is None else self._body_declared
        whole = self._body_started + self.header_timeout + min(size, BODY_SIZE_CAP) / MIN_BODY_RATE
        return min(self._body_last_byte + self.header_timeout, whole, self._body_cutoff)

    def _body_check(self) -> None:
        assert self._flow is not None
        self._body_clock = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        now = self._flow.client_time()
        if self.cycle.waiting_for_100_continue:
            # The client waits for our "100 Continue", sent when the application first asks for
            # the body: the body's clock starts then (to within the half second this polls at).
            self._body_started = self._body_last_byte = now
            self._body_clock = self.loop.call_later(0.5, self._body_check)
            return
        left = self._body_deadline() - now
        if left > 0 or self._flow.read_paused:  # the client's clock does not run while paused
            self._body_clock = self.loop.call_later(max(left, 0.5), self._body_check)
            return
        log.debug("closing a connection whose request body stalled or crawled")
        self.transport.close()

    def _stop_body_clock(self) -> None:
        if self._body_clock is not None:
            self._body_clock.cancel()
            self._body_clock = None


class _ClockedFlow(FlowControl):
    """uvicorn's flow control, keeping the time during which the server itself was not reading,
    so that the body's clock counts only time in which the client could have sent."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(transport)
        self._loop = loop
        self._paused_since: float | None = None
        self._paused_for = 0.0

    def pause_reading(self) -> None:
        if not self.read_paused:
            self._paused_since = self._loop.time()
        super().pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self._paused_since is not None:
            self._paused_for += self._loop.time() - self._paused_since
            self._paused_since = None
        super().resume_reading()

    def client_time(self) -> float:
        """The loop's clock less the time reading was paused: it stands still while paused."""
        now = self._loop.time()
        return now - self._paused_for - (now - self._paused_since if self._paused_since is not None else 0)


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The body's declared length (h11 has validated it), or ``None`` for a chunked body."""
    length: int | None = None
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value) if len(value) <= 18 else BODY_SIZE_CAP
    return length


def with_header_timeout(seconds: float) -> type[LimitedH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=…)`` (which constructs it with keywords)."""

    class Configured(LimitedH11Protocol):
        header_timeout = seconds

    Configured.__name__ = LimitedH11Protocol.__name__
    return Configured
