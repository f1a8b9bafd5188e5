"""Initialising a data dir records the database and ports once (services/setup.py)."""

from __future__ import annotations

import json
from pathlib import Path

from provisiond.config import Settings
from provisiond.services.setup import initialise
from provisiond.store.db import Database


async def test_initialise_records_once_and_a_later_port_serves_without_rewriting_it(
    db: Database, tmp_path: Path
) -> None:
    """``serve --port P`` on an initialised dir serves on P (the result says so) but leaves the
    record alone: only ``provisiond settings set`` changes what init recorded."""
    data_dir = tmp_path / "data"
    first = await initialise(Settings(data_dir=data_dir, port=9443, mqtt_port=9883), db)
    recorded = json.loads((data_dir / "settings.json").read_text())
    assert recorded == {"database": None, "port": 9443, "mqtt_port": 9883}
    assert first.https_port == 9443

    later = await initialise(Settings(data_dir=data_dir, port=9999, mqtt_port=9883), db)
    assert later.https_port == 9999 and later.id_scope == first.id_scope
    assert json.loads((data_dir / "settings.json").read_text()) == recorded


async def test_a_data_dir_of_an_older_version_gets_its_database_recorded(
    db: Database, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "settings.json").write_text(json.dumps({"port": 9443, "mqtt_port": 9883}))
    await initialise(Settings(data_dir=data_dir, port=9443, mqtt_port=9883, database="postgresql://h/db"), db)
    recorded = json.loads((data_dir / "settings.json").read_text())
    assert recorded == {"database": "postgresql://h/db", "port": 9443, "mqtt_port": 9883}
