"""Secrets at rest: opening a database with its outer keys, and rotating those keys.

Every process that opens the database (serve, worker, every CLI command) goes through
``open_database``: it loads the keyring file, and proves it is the right one by opening the
database's outer-key check before anything else runs. A new keyring is made only for a database
that has never sealed anything (a new data dir, or one from before secrets were sealed, whose
secrets migration 0006 then seals): a missing or wrong key file is an error, never a silent
regeneration that would leave every stored key unreadable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from provisiond.config import Settings
from provisiond.services import audit
from provisiond.store import secrets as repo
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring, KeyringError, SecretUnreadable
from provisiond.store.migrate import migrate

__all__ = ["KeyringError", "RotationResult", "open_database", "rotate"]

log = logging.getLogger(__name__)

# How long a rotation waits, after writing the new key, before it reseals: every running process
# re-reads the keyring file within a second (store/keyring.py), and from then on seals with the
# new key, so what the rotation reseals is not immediately resealed under the old one.
ROTATION_GRACE_SECONDS = 2.5


async def open_database(settings: Settings, *, pool_size: int = 8, migrate_schema: bool = True) -> Database:
    """The settings' database, migrated (unless told not to) and opened with its keyring.

    Raises ``KeyringError`` when the keyring file is missing for a database that has sealed
    secrets, unreadable, or does not open this database's secrets.
    """
    path = settings.keyring_path
    if path.exists():
        keyring = Keyring.load(path)
    else:
        sealed_with = await _sealed_with(settings)
        if sealed_with is not None:
            raise KeyringError(
                f"the outer key file {path} is missing, and this database's secrets are sealed with "
                f"key {sealed_with!r}: restore that file (docs/security.md); a new key would not open them"
            )
        keyring = Keyring.create(path)
        log.info("created the outer key file %s (keep a copy apart from the database's backups)", path)
    db = Database(settings.database_url, keyring=keyring, pool_size=pool_size)
    try:
        if migrate_schema:
            await migrate(db)
        async with db.write() as conn:
            await repo.ensure_check(conn)
    except SecretUnreadable:
        await db.dispose()
        raise KeyringError(
            f"the outer key file {path} does not open this database's secrets (wrong key file?)"
        ) from None
    except BaseException:
        await db.dispose()
        raise
    return db


async def _sealed_with(settings: Settings) -> str | None:
    """The key id this database's secrets are sealed with, if it has any sealed secrets."""
    probe = Database(settings.database_url, keyring=Keyring.in_memory(), pool_size=1)
    try:
        async with probe.read() as conn:
            return await repo.has_sealed_secrets(conn)
    finally:
        await probe.dispose()


@dataclass(frozen=True, slots=True)
class RotationResult:
    key_id: str
    retired: list[str]
    resealed: int


async def rotate(
    db: Database,
    *,
    batch_size: int = 500,
    grace: float = ROTATION_GRACE_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Reseal every secret under a new outer key, in batches, while servers keep serving.

    The keyring file holds the old and the new key until every row is resealed; only then is
    the old key dropped. A crash in between leaves both keys in the file, every value readable,
    and the next ``rotate`` resumes with the same new key.
    """
    keyring = db.keyring
    with keyring.rotation_lock():
        current = keyring.begin_rotation()
        await asyncio.sleep(grace)
        total = 0
        clean_passes = 0
        # Two passes in a row must find nothing, the second after another grace period: a
        # transaction that sealed under the old key just before its process saw the new file
        # may commit after the first empty pass.
        while clean_passes < 2:
            found = 0
            while True:
                if keyring.current != current:
                    raise KeyringError(f"the key file {keyring.path} changed during the rotation")
                async with db.write() as conn:
                    batch = await repo.reseal_batch(conn, current, batch_size)
                if batch == 0:
                    break
                found += batch
                total += batch
                if progress is not None:
                    progress(total)
            clean_passes = clean_passes + 1 if found == 0 else 0
            if clean_passes == 1:
                await asyncio.sleep(grace)
        retired = keyring.finish_rotation()
        async with db.write() as conn:
            await audit.record(
                conn, "secrets.rotate", current, details={"resealed": total, "retired": ",".join(retired)}
            )
    log.info("outer key rotated to %s; %d secrets resealed; retired %s", current, total, retired)
    return RotationResult(current, retired, total)
