"""``provisiond secrets …``: the outer keys that seal every secret stored in the database."""

from __future__ import annotations

from typing import Annotated

import typer

from provisiond.cli.common import JsonFlag, emit, group, run, with_db, with_settings
from provisiond.config import Settings
from provisiond.services.secrets import RotationResult, rotate

__all__ = ["secrets_app"]

secrets_app = group("Secrets at rest and their outer keys.")


@secrets_app.command("rotate")
@with_settings()
def secrets_rotate(
    settings: Settings,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="secrets resealed per transaction")
    ] = 500,
    as_json: JsonFlag = False,
) -> None:
    """Reseal every secret under a new outer key while servers keep serving, then drop the old key.

    Interrupted, it leaves both keys in the key file and every secret readable; running it
    again finishes the same rotation. Progress goes to stderr; no key is ever printed.
    """

    def progress(done: int) -> None:
        typer.echo(f"resealed {done} secrets", err=True)

    result: RotationResult = run(
        with_db(settings, lambda db: rotate(db, batch_size=batch_size, progress=progress))
    )
    data = {
        "keyId": result.key_id,
        "retiredKeyIds": result.retired,
        "resealed": result.resealed,
        "keyFile": str(settings.keyring_path.resolve()),
    }
    human = (
        f"outer key {result.key_id} in {data['keyFile']}; {result.resealed} secrets resealed; "
        f"retired: {', '.join(result.retired) or 'none'}"
    )
    emit(as_json, data, human)
