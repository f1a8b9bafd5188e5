"""``provisiond claim import`` and ``provisiond operation watch``: claims in bulk, followed live.

``claim import`` turns a CSV of device identifiers into one durable claim operation of the
partner, exactly as a zero-touch ``devices:claimAsync`` would (the same service, the same
worker, one audit entry for the submission and one with the counts when it completes); it
returns at once with the operation's name. ``operation watch`` follows any operation until it
is done. Neither runs the worker: ``serve`` (or ``provisiond worker``) does.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Annotated, Any

import typer

from provisiond.api.zerotouch.lro import operation_name
from provisiond.cli.common import JsonFlag, emit, fail, group, run, with_db, with_settings
from provisiond.cli.progress import progress_bar
from provisiond.config import Settings
from provisiond.domain.claims import ClaimItem, Operation, OperationKind, SectionType
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor
from provisiond.services.claims import ClaimsService
from provisiond.services.operations import OperationsService
from provisiond.store.db import Database

__all__ = ["IDENTIFIER_COLUMNS", "claim_app", "operation_app"]

claim_app = group("Claims in bulk for a partner (zero-touch).")
operation_app = group("Durable operations (claims, unclaims, Sphere claims).")

IDENTIFIER_COLUMNS = ("imei", "meid", "serialNumber", "manufacturer", "model")
_FIELDS = {
    "imei": "imei",
    "meid": "meid",
    "serialNumber": "serial_number",
    "manufacturer": "manufacturer",
    "model": "model",
}


def _identifiers(path: Path) -> list[DeviceIdentifier]:
    """The CSV's rows as identifiers; the worker checks each one (a bad one fails that item)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if not header or any(name not in IDENTIFIER_COLUMNS for name in header):
                raise fail(f"the CSV header names only these columns: {', '.join(IDENTIFIER_COLUMNS)}")
            out = []
            for record in reader:
                values = {_FIELDS[k]: v.strip() for k, v in record.items() if k and v and v.strip()}
                if values:
                    out.append(DeviceIdentifier(**values))
            return out
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}") from None


def _names(op: Operation) -> dict[str, str]:
    return {"name": operation_name(op.id), "operationId": str(op.id)}


@claim_app.command("import")
@with_settings()
def claim_import(
    settings: Settings,
    file: Annotated[
        Path, typer.Argument(help="CSV with columns among imei, meid, serialNumber, manufacturer, model")
    ],
    partner: Annotated[int, typer.Option("--partner", help="the partner id the devices are claimed by")],
    customer: Annotated[int, typer.Option("--customer", help="the partner's customer they are claimed for")],
    vendor: Annotated[
        str | None, typer.Option("--vendor", help="google or samsung [default: the customer's]")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Claim every device of the file as one durable operation; prints its name at once."""
    chosen: Vendor | None = None
    if vendor is not None:
        try:
            chosen = Vendor(vendor)
        except ValueError:
            raise fail(f"--vendor is google or samsung, not {vendor!r}") from None
    identifiers = _identifiers(file)

    async def action(db: Database) -> Operation:
        service = ClaimsService(db)
        owner = await service.partner(partner)
        company = await service.customer(owner, customer)
        items = [(ClaimItem(i, company.id, SectionType.ZERO_TOUCH), None) for i in identifiers]
        return await service.submit(owner, OperationKind.CLAIM, chosen or company.vendor, items)

    op = run(with_db(settings, action))
    names = _names(op)
    emit(
        as_json,
        names,
        f"{names['name']}: {op.total} devices submitted; follow it with `provisiond operation watch {op.id}`",
    )


def _final(op: Operation) -> dict[str, Any]:
    return {
        **_names(op),
        "kind": op.kind.value,
        "state": op.state.value,
        "done": op.done,
        "total": op.total,
        "processed": op.processed,
        "succeeded": op.succeeded,
        "failed": op.processed - op.succeeded,
    }


@operation_app.command("watch")
@with_settings()
def operation_watch(
    settings: Settings,
    operation: Annotated[
        str, typer.Argument(help="an operation id, its name (operations/…) or a Sphere UUID")
    ],
    interval: Annotated[float, typer.Option("--interval", min=0.05, help="seconds between looks")] = 0.5,
    as_json: JsonFlag = False,
) -> None:
    """A live progress bar until the operation is done, then its counts."""

    async def action(db: Database) -> Operation:
        service = OperationsService(db)
        op = await service.find(operation)
        with progress_bar(as_json) as bar:
            task = bar.add_task(f"{op.kind.value} {op.id}", total=op.total, completed=op.processed)
            while not op.done:
                await asyncio.sleep(interval)
                op = await service.find(str(op.id))
                bar.update(task, completed=op.processed)
        return op

    op = run(with_db(settings, action))
    final = _final(op)
    emit(
        as_json,
        final,
        f"{final['name']}: {final['state']}: {op.total} items, "
        f"{op.succeeded} succeeded, {final['failed']} failed",
    )
