"""``provisiond events …``: event webhook subscriptions (docs/events.md).

A generated secret is printed once, by ``subscribe``, and never again: it is stored sealed, and
``list`` shows no secret. With ``--secret-file`` the operator's own ``whsec_`` secret is read from
a file, so it never appears on a command line or in the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisiond import wiring
from provisiond.cli.common import JsonFlag, emit, fail, group, run, with_db, with_settings
from provisiond.config import Settings
from provisiond.domain.events import parse_types
from provisiond.domain.webhooks import redact_webhook_url
from provisiond.errors import InvalidInput

__all__ = ["events_app"]

events_app = group("Event webhooks: signed CloudEvents sent to subscribers (docs/events.md).")

Types = Annotated[
    str | None,
    typer.Option("--types", help="event types or prefixes ending in '*', comma-separated; default all"),
]
SecretFile = Annotated[
    Path | None,
    typer.Option("--secret-file", help="a file holding the whsec_ signing secret; default: one is generated"),
]


@events_app.command("subscribe")
@with_settings()
def subscribe(
    settings: Settings,
    url: str,
    types: Types = None,
    secret_file: SecretFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Send matching events to URL, signed; prints the subscription id (and a generated secret, once)."""
    try:
        filters = parse_types(types)
        secret = secret_file.read_text() if secret_file is not None else None
    except InvalidInput as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        raise fail(f"cannot read --secret-file: {exc.strerror}") from None
    ident, generated = run(
        with_db(settings, lambda db: wiring.event_service(settings, db).subscribe(url, filters, secret))
    )
    data = {"id": ident} | ({"secret": generated} if generated else {})
    human = f"subscription {ident}" + (f"\nsecret: {generated}" if generated else "")
    emit(as_json, data, human)


@events_app.command("list")
@with_settings()
def list_subscriptions(settings: Settings, as_json: JsonFlag = False) -> None:
    """Every subscription: id, URL and type filters (never its secret)."""
    subs = run(with_db(settings, lambda db: wiring.event_service(settings, db).list()))
    rows = [
        # A URL's query may hold a function key: shown redacted, like in the audit trail.
        {
            "id": s.id,
            "url": redact_webhook_url(s.url),
            "types": list(s.types),
            "created": s.created.isoformat(),
        }
        for s in subs
    ]
    human = (
        "\n".join(f"{r['id']}  {r['url']}  {','.join(r['types']) or '*'}" for r in rows) or "no subscriptions"
    )
    emit(as_json, {"subscriptions": rows}, human)


@events_app.command("remove")
@with_settings()
def remove(settings: Settings, subscription_id: str, as_json: JsonFlag = False) -> None:
    """Remove a subscription; events not yet delivered to it are dropped."""
    run(with_db(settings, lambda db: wiring.event_service(settings, db).remove(subscription_id)))
    emit(as_json, {"id": subscription_id, "removed": True}, f"removed {subscription_id}")
