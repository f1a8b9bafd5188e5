"""``provisiond enroll import|export``: individual enrollments in bulk, from and to files.

``import`` writes through ``EnrollmentService.import_batch`` (the service the API uses), in
batches of ``BATCH`` rows per transaction, so a factory file of thousands of devices neither
holds one huge transaction nor pays one per row. Each written enrollment is its own audit entry,
by the operator who ran the command.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from provisiond.cli.common import JsonFlag, emit, fail, group, run, with_db, with_settings
from provisiond.cli.enroll_files import CSV_COLUMNS, Row, csv_row, file_format, jsonl_object, read_rows
from provisiond.cli.progress import progress_bar
from provisiond.config import Settings
from provisiond.domain.enrollments import EnrollmentKind
from provisiond.errors import InvalidInput
from provisiond.services.enrollments import EnrollmentService, ImportResult, ImportStatus
from provisiond.store.db import Database

__all__ = ["BATCH", "enroll_app"]

enroll_app = group("Individual enrollments in bulk: import from and export to JSON Lines or CSV.")

BATCH = 500
PAGE = 1000

Format = Annotated[
    str | None,
    typer.Option("--format", help="jsonl or csv [default: by the file's extension; export: jsonl]"),
]


@enroll_app.command("import")
@with_settings()
def enroll_import(
    settings: Settings,
    file: Annotated[Path, typer.Argument(help="JSON Lines (one DPS IndividualEnrollment a line) or CSV")],
    format: Format = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check every row, write nothing")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create or update the file's enrollments; a bad row is reported and the others written.

    Running the same file again is safe: identical enrollments are reported unchanged. Exit
    status 1 when any row failed.
    """
    try:
        rows = read_rows(file, file_format(file, format))
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {exc}") from None
    except InvalidInput as exc:
        raise fail(exc.message) from None

    async def action(db: Database) -> list[ImportResult]:
        service = EnrollmentService(db)
        results: list[ImportResult] = []
        with progress_bar(as_json) as bar:
            task = bar.add_task("checking" if dry_run else "importing", total=len(rows))
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                results += await service.import_batch([row.item for row in batch], dry_run=dry_run)
                bar.advance(task, len(batch))
        return results

    results = run(with_db(settings, action))
    summary = _summary(file, rows, results, dry_run)
    emit(as_json, summary, _human(summary))
    if summary["failed"]:
        raise typer.Exit(1)


def _summary(file: Path, rows: list[Row], results: list[ImportResult], dry_run: bool) -> dict[str, Any]:
    counts = {status.value: 0 for status in ImportStatus}
    failures = []
    for row, result in zip(rows, results, strict=True):
        counts[result.status.value] += 1
        if result.status is ImportStatus.FAILED:
            failures.append({"line": row.line, "registrationId": row.id, "reason": result.reason})
    return {"file": str(file), "dryRun": dry_run, "rows": len(rows), **counts, "failures": failures}


def _human(summary: dict[str, Any]) -> str:
    lines = [
        f"line {f['line']}: {f['registrationId'] or '(no registrationId)'}: {f['reason']}"
        for f in summary["failures"]
    ]
    verb = "would be " if summary["dryRun"] else ""
    lines.append(
        f"{summary['rows']} rows: {summary['created']} {verb}created, {summary['updated']} {verb}updated, "
        f"{summary['unchanged']} unchanged, {summary['failed']} failed"
    )
    return "\n".join(lines)


@enroll_app.command("export")
@with_settings()
def enroll_export(
    settings: Settings,
    format: Format = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="write to this file [default: stdout]")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every individual enrollment, keys and certificates included (keep the file private).

    JSON Lines (the default) can be imported again as it is; CSV has the import's columns.
    """
    fmt = format or (file_format(output, None) if output is not None else "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise fail(f"--format is csv or jsonl, not {fmt!r}")

    async def action(db: Database) -> int:
        service = EnrollmentService(db)
        opened = _private_file(output) if output is not None else nullcontext(sys.stdout)
        count = 0
        # A bar only when the data goes to a file: on a terminal stdout it would be drawn over it.
        with opened as out, progress_bar(as_json or output is None) as bar:
            task = bar.add_task("exporting", total=None)
            writer = _writer(out, fmt)
            token: str | None = None
            while True:
                page = await service.page(EnrollmentKind.INDIVIDUAL, token, PAGE)
                for enrollment in page.items:
                    writer(enrollment)
                count += len(page.items)
                bar.advance(task, len(page.items))
                token = page.continuation
                if token is None:
                    return count

    count = run(with_db(settings, action))
    if output is not None:
        emit(
            as_json,
            {"file": str(output), "format": fmt, "enrollments": count},
            f"{count} enrollments -> {output}",
        )


def _writer(out: IO[str], fmt: str) -> Any:
    if fmt == "csv":
        table = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        table.writeheader()
        return lambda e: table.writerow(csv_row(e))
    return lambda e: out.write(json.dumps(jsonl_object(e), separators=(",", ":")) + "\n")


def _private_file(path: Path) -> IO[str]:
    """``path`` opened for writing, 0600 whether it is new or was there (keys go into it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", newline="")
