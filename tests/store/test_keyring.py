"""The keyring file: sealing bound to rows, atomic creation, one rotation at a time, bad files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from provisiond.store.keyring import Keyring, KeyringError, SecretUnreadable, key_id_of


def test_a_sealed_value_opens_for_its_row_only(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "secrets.key")
    sealed = keyring.seal("primary secondary", "dps_policies/owner")
    assert sealed.startswith(f"v1.{keyring.current}.") and "primary" not in sealed
    assert keyring.open(sealed, "dps_policies/owner") == "primary secondary"
    with pytest.raises(SecretUnreadable):
        keyring.open(sealed, "dps_policies/reader")
    assert keyring.seal("x", "r") != keyring.seal("x", "r")  # a fresh nonce every time


def test_the_file_is_private_and_a_second_create_gets_the_first_keyring(tmp_path: Path) -> None:
    """Two commands starting on a new data dir end with one keyring, not one each."""
    old = os.umask(0o022)
    try:
        first = Keyring.create(tmp_path / "secrets.key")
        second = Keyring.create(tmp_path / "secrets.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secrets.key").stat().st_mode) == 0o600
    assert second.current == first.current
    assert second.open(first.seal("k", "row"), "row") == "k"
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.key"]  # no temporary file left


def test_another_process_sees_a_rotation_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    rotating, serving = Keyring.create(path), Keyring.load(path)
    old_value = serving.seal("old", "row")
    new_kid = rotating.begin_rotation()
    new_value = rotating.seal("new", "row")
    assert key_id_of(new_value) == new_kid
    assert serving.open(new_value, "row") == "new"  # an unknown key id re-reads the file at once
    assert rotating.open(old_value, "row") == "old"  # the old key stays until the end
    assert rotating.finish_rotation() == [key_id_of(old_value)]
    assert list(json.loads(path.read_text())["keys"]) == [new_kid]


def test_an_interrupted_rotation_is_resumed_with_the_same_new_key(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    first = Keyring.create(path).begin_rotation()
    assert Keyring.load(path).begin_rotation() == first


def test_only_one_rotation_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    keyring, other = Keyring.create(path), Keyring.load(path)
    with (
        keyring.rotation_lock(),
        pytest.raises(KeyringError, match="another rotation"),
        other.rotation_lock(),
    ):
        pass


@pytest.mark.parametrize("content", ["", "{}", '{"current": "a", "keys": {"a": "c2hvcnQ="}}', "not json"])
def test_a_file_that_is_not_a_keyring_is_a_keyring_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "secrets.key"
    path.write_text(content)
    with pytest.raises(KeyringError, match="not a provisiond keyring"):
        Keyring.load(path)


def test_a_broken_file_on_refresh_keeps_the_keys_already_read(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    keyring = Keyring.create(path)
    sealed = keyring.seal("value", "row")
    path.write_text("garbage")
    os.utime(path, ns=(1, 1))
    keyring._refresh(force=True)
    assert keyring.open(sealed, "row") == "value"
