"""One fuzz target (a real server with every dialect's credentials) per test process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.harness import FuzzTarget, fuzz_target


@pytest.fixture(scope="session")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    yield from fuzz_target(tmp_path_factory.mktemp("fuzz"))
