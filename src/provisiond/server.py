"""Running the server process: the ASGI app behind the TLS front on the HTTPS port.

TLS is always on. Without ``--tls-cert/--tls-key`` the development certificate that ``init``
created is served (leaf + CA chain), so clients need only trust ``caCertificate``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from OpenSSL import SSL

from provisiond import telemetry, wiring
from provisiond.api.app import create_app
from provisiond.api.dps_device.mqtt.session import MqttSession
from provisiond.api.dps_device.mqtt.transports import MqttProtocol
from provisiond.config import Settings
from provisiond.gc_tuning import tune_gc
from provisiond.services.setup import InitResult
from provisiond.tls.front import ConnectionLimit, TlsProtocol, fronted, server_context
from provisiond.tls.http_limits import with_header_timeout

__all__ = ["serve"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server plus the MQTT listener, opened once the app has started (its services
    exist then) and closed before the app shuts down. The MQTT port sits behind the same TLS
    front as HTTPS: same certificate, same client-certificate handling, same connection limit.
    ``sessions`` is the process's registry of open MQTT sessions (TLS and WebSocket alike), which
    the app counts for ``/metrics`` and shutdown closes."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: FastAPI,
        tls: SSL.Context,
        limit: ConnectionLimit,
        mqtt_port: int | None,
        sessions: set[MqttSession],
    ) -> None:
        super().__init__(config)
        self._app = app
        self._tls = tls
        self._limit = limit
        self._mqtt_port = mqtt_port
        self._sessions = sessions
        self._mqtt: asyncio.Server | None = None
        self.failed = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn exits (status 3) itself when the app fails to start, so should_exit here means
        # SIGTERM/SIGINT arrived during startup: a clean stop, as is one that came before uvicorn
        # took the signals.
        await super().startup(sockets)
        if _stop_requested:
            self.should_exit = True
        if self.should_exit or self._mqtt_port is None:
            return
        loop = asyncio.get_running_loop()
        registrations = lambda: self._app.state.ctx.registrations  # noqa: E731 - read per connection
        try:
            self._mqtt = await loop.create_server(
                lambda: TlsProtocol(
                    self._tls, lambda: MqttProtocol(registrations, self._sessions), self._limit
                ),
                host=self.config.host,
                port=self._mqtt_port,
                backlog=self.config.backlog,
            )
        except OSError as exc:
            log.error("cannot listen for MQTT on %s:%d: %s", self.config.host, self._mqtt_port, exc)
            self.failed = True
            self.should_exit = True
            return
        log.info("provisiond serving MQTT on %s:%d", self.config.host, self._mqtt_port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._mqtt is not None:
            self._mqtt.close()
            for session in list(self._sessions):
                session.close()
        await super().shutdown(sockets)


def serve(settings: Settings, init: InitResult, *, mqtt: bool = True, processes: int = 1) -> None:
    """Serve HTTPS (every dialect) and, unless ``mqtt`` is false, MQTT, until SIGTERM or SIGINT.

    With ``processes`` > 1 (PostgreSQL only: SQLite has a single writer) the HTTPS socket is
    bound once and shared by that many processes, the kernel spreading connections between
    them; the MQTT port is owned by the first process only.
    """
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SystemExit("error: --tls-cert and --tls-key go together")
    if processes > 1 and settings.is_sqlite:
        raise SystemExit(
            "error: --processes needs PostgreSQL (--database postgresql://…); SQLite has one writer"
        )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal with the
    # handler that was installed before it started. That handler only records the request: a
    # signal during startup (before uvicorn takes the signals) then stops the server once it
    # has started, and a signal re-raised after shutdown lets serve() return (exit status 0).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _record_stop)
    listener = _listen(settings.host, settings.port)
    metrics_dir = Path(tempfile.mkdtemp(prefix="provisiond-metrics-"))
    telemetry.enable_multiprocess(metrics_dir)  # before any family exists, and before forking
    children = [
        multiprocessing.get_context("fork").Process(
            target=_serve_one, args=(settings, init, False, listener), daemon=True
        )
        for _ in range(processes - 1)
    ]
    for child in children:
        child.start()
    try:
        _serve_one(settings, init, mqtt, listener)
    finally:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(timeout=15)
            if child.pid is not None:
                telemetry.process_ended(child.pid)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"error: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_one(settings: Settings, init: InitResult, mqtt: bool, listener: socket.socket) -> None:
    cert = settings.tls_cert or init.pki.server_chain
    key = settings.tls_key or init.pki.server_key
    # TLS is terminated by our front (tls/front.py), not by uvicorn: it accepts any client
    # certificate and keeps the chain for the application to judge.
    context = server_context(cert, key)
    limit = ConnectionLimit(settings.max_connections, settings.send_timeout)  # per process, HTTPS and MQTT
    sessions: set[MqttSession] = set()  # the process's MQTT sessions, over TLS and WebSocket
    app = create_app(settings, wiring.running(settings), mqtt_sessions=sessions)
    # Every TLS connection counts against the limit; those of MQTT sessions are MQTT's.
    app.state.open_connections = lambda: (max(0, limit.open - len(sessions)), len(sessions))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=fronted(context, with_header_timeout(settings.header_timeout), limit),
        # uvicorn closes a kept-alive connection that sends no byte within this after a response.
        # It annotates the value int but only hands it to loop.call_later, which takes a float.
        timeout_keep_alive=settings.keepalive_timeout,  # type: ignore[arg-type]
        log_level=settings.log_level,
        # JSON logs: uvicorn's loggers go through the root handler (logs.py), not its own format.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        access_log=False,
        lifespan="on",
        server_header=False,
        # The peer is whoever holds the TCP connection. uvicorn would otherwise believe
        # X-Forwarded-For from loopback peers and rewrite the client address, so a local
        # process could pose as a trusted proxy (client_certs.py) or as any source (audit).
        proxy_headers=False,
    )
    log.info(
        "provisiond serving https://%s:%d (id scope %s, data dir %s, pid %d)",
        settings.host,
        settings.port,
        init.id_scope,
        init.data_dir,
        os.getpid(),
    )
    tune_gc()
    server = _Server(config, app, context, limit, settings.mqtt_port if mqtt else None, sessions)
    if not _stop_requested:
        server.run(sockets=[listener])
    if server.failed:
        raise SystemExit(1)


_stop_requested: list[int] = []


def _record_stop(signum: int, _frame: object) -> None:
    if not _stop_requested:
        log.info("provisiond stopping (%s)", signal.Signals(signum).name)
    _stop_requested.append(signum)
