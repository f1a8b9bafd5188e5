"""What the IoT Hub connector tests share: the registry's contract double, and the app with a
short hub retry window (the throttling tests stay quick; the default is 60 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from provisiond.store.db import Database
from tests.api.conftest import DpsApi, running_app
from tests.support.clock import FakeClock
from tests.support.iothub_double import IotHubDouble, serve_iothub

HUB = "contoso-hub.azure-devices.net"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[IotHubDouble]:
    with serve_iothub(tmp_path, HUB) as double:
        yield double


@pytest.fixture
async def dps(db: Database, tmp_path: Path) -> AsyncIterator[DpsApi]:
    async with running_app(db, tmp_path / "data", FakeClock(), hub_retry_seconds=3.0) as api:
        yield api
