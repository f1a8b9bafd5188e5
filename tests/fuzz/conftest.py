"""One fuzz target (a real server with every dialect's credentials) per test process.

``PROVISIOND_FUZZ_ENGINE=postgresql`` serves from a fresh PostgreSQL database of its own instead
of SQLite (``make fuzz`` runs both: some inputs, such as a NUL in an id, only hurt PostgreSQL).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fuzz.harness import FuzzTarget, fuzz_target
from tests.support.databases import own_database


@pytest.fixture(scope="session")
def fuzz(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[FuzzTarget]:
    tmp = tmp_path_factory.mktemp("fuzz")
    engine = os.environ.get("PROVISIOND_FUZZ_ENGINE", "sqlite")
    if engine == "sqlite":
        yield from fuzz_target(tmp)
        return
    with own_database(engine, tmp, request.getfixturevalue("pg_url")) as database:
        yield from fuzz_target(tmp, database)
