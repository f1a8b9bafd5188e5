"""Running the server process: the ASGI app behind the TLS front on the HTTPS port.

TLS is always on. Without ``--tls-cert/--tls-key`` the development certificate that ``init``
created is served (leaf + CA chain), so clients need only trust ``caCertificate``.
"""

from __future__ import annotations

import logging
import signal
import sys

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from provisiond.api.app import create_app
from provisiond.config import Settings
from provisiond.services.setup import InitResult
from provisiond.tls.front import fronted, server_context

__all__ = ["serve"]

log = logging.getLogger(__name__)


def serve(settings: Settings, init: InitResult, *, mqtt: bool = True) -> None:
    """Serve until SIGTERM or SIGINT. ``mqtt`` is accepted for the operator contract;
    the MQTT listener arrives with the DPS MQTT transport."""
    cert = settings.tls_cert or init.pki.server_chain
    key = settings.tls_key or init.pki.server_key
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SystemExit("error: --tls-cert and --tls-key go together")
    # TLS is terminated by our front (tls/front.py), not by uvicorn: it accepts any client
    # certificate and keeps the chain for the application to judge.
    context = server_context(cert, key)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=fronted(context, H11Protocol),
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
    )
    log.info(
        "provisiond serving https://%s:%d (id scope %s, data dir %s)",
        settings.host,
        settings.port,
        init.id_scope,
        init.data_dir,
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal with the
    # handler that was installed before it started; make that handler a clean exit (status 0).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    uvicorn.Server(config).run()


def _exit_cleanly(signum: int, _frame: object) -> None:
    log.info("provisiond stopped (%s)", signal.Signals(signum).name)
    sys.exit(0)
