"""``provisiond audit …``: read the audit trail (list with filters) and export it whole.

Both only read; nothing in the CLI changes an entry. ``export`` streams: entries are fetched in
keyset batches and written as they come, so a million entries take no more memory than a few
thousand (``bench/audit_export.py`` measures it).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from provisiond import jsontext
from provisiond.cli.common import JsonFlag, emit, fail, group, run, with_db, with_settings
from provisiond.config import Settings
from provisiond.domain.audit import AuditEntry, AuditFilter
from provisiond.services.audit import AuditService
from provisiond.store.db import Database

__all__ = ["audit_app", "entry_json", "parse_since"]

audit_app = group("The audit trail: who changed what, when, from where (append-only).")

Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="only entries at or after this: an ISO 8601 time (UTC unless it says) or an age (30m, 24h, 7d)",
        show_default=False,
    ),
]

_AGE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``--since``: an age such as ``24h`` counts back from now; anything else is an ISO time."""
    if text is None:
        return None
    age = _AGE.fullmatch(text.strip())
    if age:
        try:
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
        except OverflowError:  # an age reaching before year 1
            raise fail(f"--since {text!r} reaches back further than any entry can be") from None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"--since takes an ISO 8601 time or an age like 24h, not {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as ``audit list --json`` and ``audit export`` print it (docs/audit.md)."""
    return {
        "seq": entry.seq,
        "time": entry.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": str(entry.actor),
        "action": entry.action,
        "target": entry.target,
        "outcome": str(entry.outcome),
        "requestId": entry.request_id,
        "sourceAddress": entry.source,
        "details": dict(entry.details),
    }


def _line(entry: AuditEntry) -> str:
    """One entry, one line: control characters in a field are shown escaped, so a target or a
    name holding a newline can never print a line that looks like another entry."""
    where = f" from {_plain(entry.source)}" if entry.source else ""
    return (
        f"{entry.time:%Y-%m-%d %H:%M:%S}Z  {_plain(str(entry.actor))}  {entry.action}  "
        f"{_plain(entry.target)}  {entry.outcome}{where}"
    )


def _plain(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@audit_app.command("list")
@with_settings()
def audit_list(
    settings: Settings,
    since: Since = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="kind:id (operator:alice) or a kind (device)")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="an action (enrollment.disable) or its prefix (enrollment)")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="what was acted on, exactly")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="at most this many")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """The newest matching entries, newest first."""
    selection = AuditFilter(parse_since(since), actor, action, target)
    entries = run(with_db(settings, lambda db: AuditService(db).entries(selection, limit)))
    human = "\n".join(_line(entry) for entry in entries) or "no entries"
    emit(as_json, {"entries": [entry_json(entry) for entry in entries]}, human)


@audit_app.command("export")
@with_settings()
def audit_export(
    settings: Settings,
    format: Annotated[str, typer.Option("--format", help="jsonl: one JSON object per line")] = "jsonl",
    since: Since = None,
) -> None:
    """Every entry (since --since), oldest first, streamed to stdout."""
    if format != "jsonl":
        raise fail(f"--format jsonl is the one export format, not {format!r}")
    start = parse_since(since)

    async def action(db: Database) -> None:
        out = sys.stdout
        async for entry in AuditService(db).export(start):
            out.write(jsontext.dumps(entry_json(entry)) + "\n")
        out.flush()

    run(with_db(settings, action))
