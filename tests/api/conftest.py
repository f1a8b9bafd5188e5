"""The application in-process (ASGI) on each database engine, with a hand-moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisiond import wiring
from provisiond.api.app import create_app
from provisiond.api.context import AppContext
from provisiond.config import Settings
from provisiond.domain.sas import build_sas
from provisiond.services.setup import InitResult, initialise
from provisiond.store.db import Database
from tests.support.clock import FakeClock

API = "2021-10-01"


@dataclass
class DpsApi:
    """An HTTP client for the DPS service API that signs requests like the Node SDK."""

    http: httpx.AsyncClient
    init: InitResult
    clock: FakeClock
    db: Database
    ctx: AppContext

    @property
    def owner_key(self) -> str:
        return self.init.service_connection_string.split("SharedAccessKey=", 1)[1]

    def token(
        self,
        *,
        key: str | None = None,
        policy: str = "provisioningserviceowner",
        resource: str = "localhost",
        ttl: int = 3600,
    ) -> str:
        return build_sas(key or self.owner_key, resource, int(self.clock().timestamp()) + ttl, policy)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        version: str | None = API,
        auth: str | None = "default",
    ) -> httpx.Response:
        sent = (
            {"Authorization": self.token()}
            if auth == "default"
            else ({"Authorization": auth} if auth else {})
        )
        sent.update(headers or {})
        params = {"api-version": version} if version else {}
        return await self.http.request(method, path, params=params, json=json, content=content, headers=sent)

    async def count(self, collection: str = "enrollments") -> int:
        """How many records a full query returns (to prove that a refused request wrote nothing)."""
        total = 0
        token = None
        while True:
            headers = {"x-ms-max-item-count": "1000", **({"x-ms-continuation": token} if token else {})}
            r = await self.call("POST", f"/{collection}/query", json={"query": "*"}, headers=headers)
            assert r.status_code == 200, r.text
            total += len(r.json())
            token = r.headers.get("x-ms-continuation")
            if token is None:
                return total


TEST_SETTINGS: dict[str, Any] = {
    "port": 8443,
    "webhook_allowlist": ["https://*", "http://127.0.0.1:*"],
    "webhook_allow_http": True,
    "webhook_timeout": 2.0,
}


@asynccontextmanager
async def running_app(
    db: Database, data_dir: Path, clock: FakeClock, **overrides: Any
) -> AsyncIterator[DpsApi]:
    """The app with its lifespan (as a server start would run it), and a client for it."""
    settings = Settings(data_dir=data_dir, **{**TEST_SETTINGS, **overrides})
    init = await initialise(settings, db, clock)
    app = create_app(settings, wiring.running(settings, clock=clock, db=db))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://localhost:8443") as http:
            yield DpsApi(http, init, clock, db, app.state.ctx)


@pytest.fixture
async def dps(db: Database, tmp_path: Path) -> AsyncIterator[DpsApi]:
    async with running_app(db, tmp_path / "data", FakeClock()) as api:
        yield api
