"""uvicorn's HTTP/1.1 protocol with the limits only the HTTP layer can enforce.

**The request-head deadline.** uvicorn times one thing: the idle wait after a response
(``timeout_keep_alive``, which the first byte of anything cancels for good). A connection that
sends nothing after the TLS handshake, or dribbles a header byte every few seconds, was
therefore held forever, and a few hundred of them hold the server. As nginx's
``client_header_timeout``, the head's clock starts when the front hands the connection over (the
first request) or when the first byte of the next request arrives on a kept-alive connection,
and only a complete head stops it: bytes that arrive meanwhile do not extend it. When it fires
the connection is closed without a response. Together with uvicorn's keep-alive timer and the
front's handshake timeout, no connection waits for its client without a bound.

**Over capacity.** The TLS front marks a connection over the process's connection limit
(``over_capacity`` extra info); every request on it is answered 503 with ``connection: close``,
by uvicorn's own ``service_unavailable`` app, and it is never upgraded to a WebSocket.

(A head larger than h11's 16 KB ``max_incomplete_event_size`` is answered 400 by uvicorn itself.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["LimitedH11Protocol", "with_header_timeout"]

log = logging.getLogger(__name__)


class LimitedH11Protocol(H11Protocol):
    """``H11Protocol`` plus the request-head deadline and the over-capacity answer."""

    header_timeout: ClassVar[float] = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._over_capacity = False

    def connection_made(  # type: ignore[override]  # as H11Protocol's own
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        if transport.get_extra_info("over_capacity", False):
            self._over_capacity = True
            self.app = service_unavailable
        self._start_head_clock()

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None and self.conn.their_state is h11.IDLE:
            self._start_head_clock()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        self._stop_head_clock_if_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Bytes of the next request that arrived while this response was being written are
        # parsed only now; if they do not make a complete head, its clock starts now.
        if (
            not self.transport.is_closing()
            and self.conn.their_state is h11.IDLE
            and self.conn.trailing_data[0]
        ):
            self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_clock()
        super().connection_lost(exc)

    def _should_upgrade(self) -> bool:
        return not self._over_capacity and super()._should_upgrade()

    # -- the head's clock ---------------------------------------------------------------------

    def _start_head_clock(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head_clock_if_complete(self) -> None:
        # h11 leaves IDLE for the client exactly when it has parsed a complete request head
        # (or failed on it, in which case uvicorn has answered 400 and is closing).
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_clock()

    def _cancel_head_clock(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            log.debug("closing a connection whose request head took over %ss", self.header_timeout)
            self.transport.close()


def with_header_timeout(seconds: float) -> type[LimitedH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=…)`` (which constructs it with keywords)."""

    class Configured(LimitedH11Protocol):
        header_timeout = seconds

    Configured.__name__ = LimitedH11Protocol.__name__
    return Configured
