"""The keys a TPM device was given, sealed at rest like every other secret.

A TPM device gets two HMAC keys, each only inside an activation blob its TPM alone can open: the
key of its latest challenge (what its registration SAS tokens are verified with) and its key at
its hub (given with ``assigned``). Both are sealed together in one value (store/keyring.py), bound
to the row, so one ``sealed_with`` says what a rotation must reseal. The EK and SRK the keys were
issued for are public and stored as sent.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.jsontext import dumps, loads
from provisiond.store.db import keyring_of
from provisiond.store.engine_specific import prebuilt
from provisiond.store.keyring import Keyring, key_id_of
from provisiond.store.tables import tpm_keys as t

__all__ = ["TpmKeys", "delete_keys", "get_keys", "put_keys", "tpm_row"]


@dataclass(frozen=True, slots=True)
class TpmKeys:
    """What a TPM device was last given; ``hub_key`` is ``None`` until a registration assigns it."""

    endorsement_key: str
    storage_root_key: str
    challenge_key: bytes
    hub_key: bytes | None
    issued: datetime


def tpm_row(key: str) -> str:
    """The associated data a device's sealed TPM keys are bound to."""
    return f"tpm_keys/{key}"


def _seal(keyring: Keyring, key: str, keys: TpmKeys) -> str:
    plain = {
        "challenge": base64.b64encode(keys.challenge_key).decode(),
        "hub": base64.b64encode(keys.hub_key).decode() if keys.hub_key is not None else None,
    }
    return keyring.seal(dumps(plain), tpm_row(key))


_GET = select(t.c.issued, t.c.endorsement_key, t.c.storage_root_key, t.c.sealed).where(
    t.c.key == bindparam("key")
)


async def get_keys(conn: AsyncConnection, key: str) -> TpmKeys | None:
    """The keys of the device with this (case-folded) registration id, opened."""
    row = (await conn.execute(_GET, {"key": key})).first()
    if row is None:
        return None
    plain = loads(keyring_of(conn).open(row.sealed, tpm_row(key)))
    hub = plain.get("hub")
    return TpmKeys(
        endorsement_key=row.endorsement_key,
        storage_root_key=row.storage_root_key,
        challenge_key=base64.b64decode(plain["challenge"]),
        hub_key=base64.b64decode(hub) if hub else None,
        issued=row.issued,
    )


async def put_keys(conn: AsyncConnection, key: str, keys: TpmKeys) -> None:
    """Create or replace the device's row: a new challenge replaces the old one's key."""
    sealed = _seal(keyring_of(conn), key, keys)
    values = {
        "key": key,
        "issued": keys.issued,
        "endorsement_key": keys.endorsement_key,
        "storage_root_key": keys.storage_root_key,
        "sealed": sealed,
        "sealed_with": key_id_of(sealed),
    }
    await conn.execute(prebuilt(conn, _upsert), values)


async def delete_keys(conn: AsyncConnection, key: str) -> None:
    """Forget the device's keys (its enrollment was deleted): an old challenge key must not
    open the same registration id if it is enrolled again."""
    await conn.execute(t.delete().where(t.c.key == key))


def _upsert(dialect: Any) -> Any:
    ins = dialect.insert(t)
    return ins.on_conflict_do_update(
        index_elements=[t.c.key],
        set_={
            name: getattr(ins.excluded, name)
            for name in ("issued", "endorsement_key", "storage_root_key", "sealed", "sealed_with")
        },
    )
