"""``provisiond partner …``, ``provisiond worker``: resellers and the operation worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from provisiond import wiring
from provisiond.cli.common import JsonFlag, configure_logging, emit, group, run, with_db, with_settings
from provisiond.config import Settings
from provisiond.domain.audit import AuditContext
from provisiond.gc_tuning import tune_gc
from provisiond.services import audit
from provisiond.services.claims import ClaimsService
from provisiond.store.db import Database

__all__ = ["partner_app", "worker"]

log = logging.getLogger(__name__)

partner_app = group("Resellers (zero-touch and reseller-model dialects).")
token_app = group("A partner's bearer token.")
partner_app.add_typer(token_app, name="token")


@partner_app.command("create")
@with_settings()
def partner_create(settings: Settings, name: str, as_json: JsonFlag = False) -> None:
    """Create a partner and print its id and bearer token (shown once; stored hashed)."""
    partner, token = run(with_db(settings, lambda db: ClaimsService(db).create_partner(name)))
    emit(as_json, {"partnerId": str(partner.id), "token": token}, f"partner {partner.id}\ntoken: {token}")


@token_app.command("rotate")
@with_settings()
def token_rotate(settings: Settings, partner_id: int, as_json: JsonFlag = False) -> None:
    """Issue a new token; the old one stops working at once."""
    token = run(with_db(settings, lambda db: ClaimsService(db).rotate_token(partner_id)))
    emit(as_json, {"partnerId": str(partner_id), "token": token}, f"token: {token}")


@with_settings()
def worker(settings: Settings) -> None:
    """Run only the operation worker (scale-out: several workers share one PostgreSQL).

    SIGTERM or SIGINT: finish the batch in hand, then exit 0. A second signal abandons that batch
    (its transaction rolls back). Either way the operation is resumed, once its lease expires, by
    another worker or by this one restarted.
    """
    configure_logging(settings)

    async def main(db: Database) -> None:
        tune_gc()  # the worker decodes and writes bulk operations: the same reason as serve
        operations = wiring.operation_worker(settings, db)
        running = asyncio.create_task(operations.run())
        log.info(
            "provisiond worker running operations (pid %d, %d items a batch, lease %g s)",
            os.getpid(),
            settings.worker_batch_size,
            settings.worker_lease_seconds,
        )

        def on_signal(signum: signal.Signals) -> None:
            if operations.stopping:
                log.info("worker stopping now (%s again): the open batch is abandoned", signum.name)
                running.cancel()
            else:
                log.info("worker stopping after the batch in hand (%s)", signum.name)
                operations.stop()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        with contextlib.suppress(asyncio.CancelledError):
            await running

    # The worker's entries (completions, retention) are by provisiond, not by whoever started it.
    with contextlib.suppress(KeyboardInterrupt), audit.acting(AuditContext()):
        run(with_db(settings, main))
