"""A TPM device's keys: sealed at rest, replaced by a new challenge, resealed by a rotation."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from provisiond.store import tpm as repo
from provisiond.store.db import Database
from provisiond.store.secrets import reseal_batch
from provisiond.store.tables import tpm_keys
from tests.support.tpm import fake_ek, fake_srk

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _keys(challenge: bytes, hub: bytes | None = None) -> repo.TpmKeys:
    return repo.TpmKeys(fake_ek(), fake_srk(), challenge, hub, NOW)


async def test_keys_are_stored_sealed_and_read_back(db: Database) -> None:
    keys = _keys(b"c" * 32, b"h" * 32)
    async with db.write() as conn:
        await repo.put_keys(conn, "dev-1", keys)
    async with db.read() as conn:
        assert await repo.get_keys(conn, "dev-1") == keys
        assert await repo.get_keys(conn, "dev-2") is None
        raw = (await conn.execute(select(tpm_keys))).one()
    assert raw.sealed.startswith("v1.") and "Y2NjY2" not in raw.sealed  # no base64 of the key
    assert raw.sealed_with == db.keyring.current


async def test_a_new_challenge_replaces_the_old_key(db: Database) -> None:
    async with db.write() as conn:
        await repo.put_keys(conn, "dev-1", _keys(b"1" * 32))
        await repo.put_keys(conn, "dev-1", _keys(b"2" * 32, b"h" * 32))
    async with db.read() as conn:
        found = await repo.get_keys(conn, "dev-1")
        count = len((await conn.execute(select(tpm_keys.c.key))).all())
    assert found is not None and found.challenge_key == b"2" * 32 and found.hub_key == b"h" * 32
    assert count == 1


async def test_a_rotation_reseals_tpm_keys_under_the_new_outer_key(db: Database) -> None:
    async with db.write() as conn:
        await repo.put_keys(conn, "dev-1", _keys(b"c" * 32, b"h" * 32))
    keyring = db.keyring
    old = keyring.current
    new = keyring.begin_rotation()
    assert new != old
    async with db.write() as conn:
        assert await reseal_batch(conn, new, 100) >= 1
    keyring.finish_rotation()  # the old key is gone: only a resealed row still opens
    async with db.read() as conn:
        found = await repo.get_keys(conn, "dev-1")
        sealed_with = (await conn.execute(select(tpm_keys.c.sealed_with))).scalar()
    assert found is not None and found.hub_key == b"h" * 32 and sealed_with == new
