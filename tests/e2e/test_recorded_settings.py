"""What ``init`` records sticks: the database URL and the ports (README.md, "Settings").

Through the CLI, as an operator types it: a data dir initialised on PostgreSQL is used without
``--database``; a different database is refused before anything is created; ``init`` again
changes nothing, and a changed port is refused with the command that does change it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import own_database
from tests.support.server import PROVISIOND


def provisiond(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env_free = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}  # not the shell's
    return subprocess.run(
        [*PROVISIOND, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_free,
    )


@pytest.fixture
def pg_database(tmp_path: Path, pg_url: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own, as an operator writes its URL."""
    with own_database("postgresql", tmp_path, pg_url) as url:
        yield url.replace("postgresql+asyncpg://", "postgresql://")


def test_a_data_dir_initialised_on_postgresql_keeps_using_it_without_database(
    tmp_path: Path, pg_database: str
) -> None:
    data_dir = tmp_path / "d"
    assert provisiond(data_dir, "init", "--database", pg_database).returncode == 0
    added = provisiond(data_dir, "dps", "hub", "add", "hub-a.example.net")
    assert added.returncode == 0, added.stderr
    listed = provisiond(data_dir, "dps", "hub", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [h["hostName"] for h in json.loads(listed.stdout)["hubs"]] == ["hub-a.example.net"]
    assert not (data_dir / "provisiond.db").exists()


def test_another_database_than_the_recorded_one_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    assert provisiond(data_dir, "init").returncode == 0
    before = sorted(p.name for p in data_dir.iterdir())
    other = "postgresql://postgres:hunter2@127.0.0.1:5432/elsewhere"
    refused = provisiond(data_dir, "dps", "hub", "list", "--json", "--database", other)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "settings set database" in refused.stderr
    assert "hunter2" not in refused.stderr + refused.stdout  # the password is never printed
    assert "error" in json.loads(refused.stdout)  # --json: one object on stdout, failures too
    assert sorted(p.name for p in data_dir.iterdir()) == before


def test_init_again_prints_the_same_and_refuses_a_changed_port_naming_settings_set(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    first = provisiond(data_dir, "init", "--json", "--port", "9443", "--mqtt-port", "9883")
    assert first.returncode == 0, first.stderr
    recorded = (data_dir / "settings.json").read_bytes()
    again = provisiond(data_dir, "init", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(first.stdout)

    refused = provisiond(data_dir, "init", "--json", "--port", "9444")
    assert refused.returncode == 2
    assert "`provisiond settings set port 9444`" in refused.stderr and refused.stderr.count("\n") == 1
    assert (data_dir / "settings.json").read_bytes() == recorded

    other_host = provisiond(data_dir, "init", "--service-host", "dps.example.net")
    assert other_host.returncode == 2 and "service host" in other_host.stderr


def test_settings_set_changes_a_recorded_port_and_unset_restores_the_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    assert provisiond(data_dir, "init", "--port", "9443").returncode == 0
    changed = provisiond(data_dir, "settings", "set", "port", "9555", "--json")
    assert json.loads(changed.stdout) == {"name": "port", "value": 9555, "previous": 9443}
    init = json.loads(provisiond(data_dir, "init", "--json").stdout)
    assert init["httpsPort"] == 9555 and "HostName=localhost:9555;" in init["serviceConnectionString"]

    assert provisiond(data_dir, "settings", "unset", "port").returncode == 0
    shown = json.loads(provisiond(data_dir, "settings", "show", "--json").stdout)
    assert shown["settings"]["port"] == 8443 == shown["recorded"]["port"]  # recorded at its default

    recorded = (data_dir / "settings.json").read_bytes()
    for bad in (
        ("set", "port", "70000"),
        ("set", "no-such-setting", "1"),
        ("set", "data-dir", "/x"),
        ("set", "database", "garbage"),
        ("set", "database", "mysql://h/db"),
        ("set", "log-level", "LOUD"),
        ("set", "trusted-proxies", '["not-a-cidr"]'),
    ):
        refused = provisiond(data_dir, "settings", *bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), bad
        assert "Traceback" not in refused.stderr
    assert (data_dir / "settings.json").read_bytes() == recorded
    assert (data_dir / "settings.json").stat().st_mode & 0o077 == 0

    missing = provisiond(tmp_path / "nowhere", "settings", "set", "port", "9000")
    assert missing.returncode == 2 and "provisiond init" in missing.stderr


def test_a_relative_sqlite_url_is_recorded_as_the_file_it_named(tmp_path: Path) -> None:
    """Run from another directory later, the record still names the first file, so a command
    there does not quietly create a new, empty database."""
    first, elsewhere = tmp_path / "a", tmp_path / "b"
    first.mkdir(), elsewhere.mkdir()
    data_dir = tmp_path / "d"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}

    def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*PROVISIOND, *args, "--data-dir", str(data_dir)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=cwd)

    assert run(first, "init", "--database", "sqlite:///rel.db").returncode == 0
    assert run(first, "dps", "hub", "add", "hub-rel.example.net").returncode == 0
    listed = run(elsewhere, "dps", "hub", "list", "--json")
    assert [h["hostName"] for h in json.loads(listed.stdout)["hubs"]] == ["hub-rel.example.net"]
    assert not (elsewhere / "rel.db").exists()


def test_unset_database_keeps_the_data_dir_guarded(tmp_path: Path, pg_database: str) -> None:
    data_dir = tmp_path / "d"
    assert provisiond(data_dir, "init", "--database", pg_database).returncode == 0
    assert provisiond(data_dir, "settings", "unset", "database").returncode == 0
    refused = provisiond(data_dir, "dps", "hub", "list", "--database", pg_database)
    assert refused.returncode == 2 and "settings set database" in refused.stderr


def test_settings_set_database_moves_the_data_dir_to_another_database(
    tmp_path: Path, pg_database: str
) -> None:
    data_dir = tmp_path / "d"
    assert provisiond(data_dir, "init").returncode == 0
    moved = provisiond(data_dir, "settings", "set", "database", pg_database, "--json")
    assert moved.returncode == 0 and json.loads(moved.stdout)["previous"] is None
    assert provisiond(data_dir, "dps", "hub", "add", "hub-pg.example.net").returncode == 0
    explicit = provisiond(data_dir, "dps", "hub", "list", "--json", "--database", pg_database)
    assert [h["hostName"] for h in json.loads(explicit.stdout)["hubs"]] == ["hub-pg.example.net"]


def test_help_shows_flags_as_flags_and_the_defaults(tmp_path: Path) -> None:
    shown = provisiond(tmp_path, "dps", "hub", "add", "--help").stdout
    assert "<bool>" not in shown and "--json " in shown
    assert "[default: ./provisiond-data]" in shown and "[default: 1]" in shown


def test_allocation_set_names_only_the_policies_it_takes(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    assert provisiond(data_dir, "init").returncode == 0
    for policy in ("custom", "nonsense"):
        refused = provisiond(data_dir, "dps", "allocation", "set", policy)
        assert refused.returncode == 1
        assert "hashed, geoLatency, static" in refused.stderr
        assert "custom" not in refused.stderr.split("one of", 1)[1]
