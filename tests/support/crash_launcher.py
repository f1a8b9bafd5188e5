"""Run a ``provisiond`` command that SIGKILLs itself at a chosen point of the operation worker.

The product carries no crash hook. This launcher patches one into the worker of its own process,
then hands the remaining arguments to the CLI entry point (``provisiond.cli.main:app``), so a
test kills a real ``provisiond worker`` at an exact point of its work and checks what a restarted
worker makes of it::

    python -m tests.support.crash_launcher --crash-point after_batch:2 -- \\
        worker --data-dir DIR --database URL

Crash points; ``N`` counts the batches this process has written, from 1:

- ``after_batch:N``: just after batch N committed (its effects, results and counters are durable);
- ``in_batch:N``: inside batch N's transaction, after its effects and results were written and
  before the commit, so the batch must leave no trace.

The process dies as under ``kill -9`` (``subprocess`` reports return code ``-SIGKILL``): no
``finally`` runs, nothing is rolled back by the client, the lease stays until it expires.

``tests.support.operations.worker_command(url, data_dir, crash)`` builds the command line and
``worker_env`` an environment that can import this module (the repository root on
``PYTHONPATH``); use those rather than spelling the command out. A new kind of crash point is a
new wrapper in ``install``, around the function whose call or return marks that point.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provisiond.cli.main import app
from provisiond.domain.claims import Operation
from provisiond.services import worker
from provisiond.store import operations

__all__ = ["CrashPoint", "install", "main"]

_WHERE = ("after_batch", "in_batch")


@dataclass(frozen=True, slots=True)
class CrashPoint:
    """Where to die: ``where`` is ``after_batch`` or ``in_batch``, ``batch`` counts from 1."""

    where: str
    batch: int

    @classmethod
    def parse(cls, text: str) -> CrashPoint:
        where, _, n = text.partition(":")
        if where not in _WHERE or not n.isdigit() or int(n) < 1:
            raise argparse.ArgumentTypeError(f"a crash point is after_batch:N or in_batch:N, not {text!r}")
        return cls(where, int(n))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: CrashPoint) -> None:
    """Patch this process's worker so that it SIGKILLs itself at ``point``.

    ``store.operations.finish_batch`` is the last write of a batch's transaction (results and
    counters, after the effects), so dying right after it is ``in_batch``; the worker's
    ``run_batch`` returns once that transaction has committed, so dying then is ``after_batch``.
    """
    written = 0
    finish_batch = operations.finish_batch
    run_batch = worker.OperationWorker.run_batch

    async def finish_batch_then_crash(*args: Any, **kwargs: Any) -> bool:
        nonlocal written
        held = await finish_batch(*args, **kwargs)
        if held:  # a lost lease rolls the batch back: it was never written
            written += 1
            if point.where == "in_batch" and written == point.batch:
                _die()
        return held

    async def run_batch_then_crash(self: worker.OperationWorker, op: Operation) -> bool:
        more = await run_batch(self, op)
        if point.where == "after_batch" and written == point.batch:
            _die()
        return more

    operations.finish_batch = finish_batch_then_crash  # type: ignore[assignment]
    worker.OperationWorker.run_batch = run_batch_then_crash  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``--crash-point P -- ARGS…``, install the crash point, run ``provisiond ARGS…``."""
    args = list(sys.argv[1:] if argv is None else argv)
    split = args.index("--") if "--" in args else len(args)
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.crash_launcher",
        description="Run provisiond with a crash point installed (see the module docstring).",
    )
    parser.add_argument(
        "--crash-point", required=True, type=CrashPoint.parse, help="after_batch:N | in_batch:N"
    )
    options = parser.parse_args(args[:split])
    install(options.crash_point)
    app(args=args[split + 1 :], prog_name="provisiond")


if __name__ == "__main__":
    main()
