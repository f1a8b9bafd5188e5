"""Settings: the recorded database and how URLs compare and print (config.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisiond.config import Settings, database_conflict, record_setting, redact_url


def _recorded(data_dir: Path, database: str | None) -> None:
    data_dir.mkdir(exist_ok=True)
    (data_dir / "settings.json").write_text(json.dumps({"database": database, "port": 8443}))


@pytest.mark.parametrize(
    ("recorded", "given"),
    [
        ("postgresql://u@db.example/fleet", "postgres://u@db.example/fleet"),
        ("postgresql://u@db.example/fleet", "postgresql+asyncpg://u@db.example/fleet"),
        (None, None),
    ],
)
def test_spellings_of_the_same_database_are_not_a_conflict(
    tmp_path: Path, recorded: str | None, given: str | None
) -> None:
    _recorded(tmp_path / "d", recorded)
    assert database_conflict(Settings(data_dir=tmp_path / "d", database=given)) is None


def test_the_default_sqlite_file_named_explicitly_is_the_same_database(tmp_path: Path) -> None:
    _recorded(tmp_path / "d", None)
    explicit = f"sqlite:///{tmp_path / 'd' / 'provisiond.db'}"
    assert database_conflict(Settings(data_dir=tmp_path / "d", database=explicit)) is None


def test_another_database_is_a_conflict_that_names_both_without_passwords(tmp_path: Path) -> None:
    _recorded(tmp_path / "d", "postgresql://u:s3cret@db.example/fleet")
    problem = database_conflict(Settings(data_dir=tmp_path / "d", database="postgresql://u:other@db2/x"))
    assert problem is not None and "db.example/fleet" in problem and "db2/x" in problem
    assert "s3cret" not in problem and "other@" not in problem


def test_a_data_dir_that_recorded_no_database_is_not_checked(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "settings.json").write_text(json.dumps({"port": 8443}))
    assert database_conflict(Settings(data_dir=tmp_path / "d", database="postgresql://h/x")) is None


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://user:pw@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert redact_url("postgresql://user@host/db") == "postgresql://user@host/db"
    assert redact_url("postgresql://u:p@ss@host/db") == "postgresql://u:***@host/db"
    assert "pa/ss" not in redact_url("postgresql://u:pa/ss@host/db")
    assert "s3cret" not in redact_url("postgresql://u@host/db?password=s3cret&sslmode=require")
    assert "sslmode=require" in redact_url("postgresql://u@host/db?password=s3cret&sslmode=require")


def test_record_setting_validates_with_the_fields_type_and_bounds(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    assert record_setting(data_dir, "webhook_allowlist", '["https://a.example/*"]') == (
        None,
        ["https://a.example/*"],
    )
    assert record_setting(data_dir, "header_timeout", "2.5") == (None, 2.5)
    with pytest.raises(ValueError, match="greater than 0"):
        record_setting(data_dir, "header_timeout", "0")
    assert json.loads((data_dir / "settings.json").read_text()) == {
        "webhook_allowlist": ["https://a.example/*"],
        "header_timeout": 2.5,
    }
