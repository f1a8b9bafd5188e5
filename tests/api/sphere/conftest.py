"""A Sphere client on the in-process app (SQLite and PostgreSQL): two tenants and helpers.

The app runs without its in-process worker: tests run the worker by hand (``work()``), so every
intermediate state (NotStarted, InProgress) can be observed without racing it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisiond.domain.sphere import Tenant
from provisiond.store.db import Database
from tests.api.conftest import DpsApi, running_app
from tests.support.clock import FakeClock

BASE = "https://localhost:8443"

OPERATION_KEYS = {
    "OperationId",
    "OperationType",
    "State",
    "TenantId",
    "CreatedDateUTC",
    "StartedDateUTC",
    "CompletedDateUTC",
    "ResourceLocation",
    "DetailsLocation",
    "Error",
}
DEVICE_KEYS = {
    "DeviceId",
    "TenantId",
    "ChipSku",
    "DeviceGroupId",
    "ProductId",
    "LastAvailableOSVersion",
    "LastInstalledOSVersion",
    "LastOSUpdateUTC",
    "LastUpdateRequestUTC",
}


def device_id(n: int | None = None) -> str:
    """A well-formed device id in lower case (the API must take either case); random unless ``n``."""
    return f"{n:0128x}" if n is not None else secrets.token_hex(64)


def assert_sphere_error(r: httpx.Response, status: int, code: str) -> None:
    """The Sphere error array: one PublicApiErrorDetails with exactly these four names."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, list) and len(body) == 1, body
    assert set(body[0]) == {"ErrorCode", "Detail", "Status", "Title"}
    assert body[0]["ErrorCode"] == code and body[0]["Status"] == status
    assert body[0]["Detail"] and body[0]["Title"]


@dataclass
class SphereApi:
    """Calls the Sphere API as ``tenant`` (with ``token``) unless ``bearer`` says otherwise."""

    app: DpsApi
    tenant: Tenant
    token: str
    other: Tenant
    other_token: str

    @property
    def root(self) -> str:
        return f"/v2/tenants/{self.tenant.id}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        bearer: str | None = "default",
    ) -> httpx.Response:
        sent = (
            {}
            if bearer is None
            else {"Authorization": f"Bearer {self.token if bearer == 'default' else bearer}"}
        )
        sent.update(headers or {})
        return await self.app.http.request(
            method, path, json=json, content=content, headers=sent, params=params
        )

    async def work(self) -> None:
        """Run the operation worker until no operation is left."""
        while await self.app.ctx.worker.run_once():
            pass

    async def operation(self, op: dict[str, Any], bearer: str | None = "default") -> dict[str, Any]:
        r = await self.call(
            "GET", f"/v2/tenants/{op['TenantId']}/operations/{op['OperationId']}", bearer=bearer
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def claim(self, device: str, *, as_other: bool = False) -> dict[str, Any]:
        """Claim one device, run the worker, and return the finished operation."""
        tenant, token = (self.other, self.other_token) if as_other else (self.tenant, self.token)
        r = await self.call("PUT", f"/v2/tenants/{tenant.id}/devices/{device}/claim", bearer=token)
        assert r.status_code == 202, r.text
        await self.work()
        return await self.operation(r.json(), token)

    async def bulk(self, devices: list[str], *, as_other: bool = False) -> dict[str, Any]:
        """Bulk-claim devices, run the worker, and return the finished operation."""
        tenant, token = (self.other, self.other_token) if as_other else (self.tenant, self.token)
        r = await self.call("PUT", f"/v2/tenants/{tenant.id}/devices", json=devices, bearer=token)
        assert r.status_code == 202, r.text
        await self.work()
        return await self.operation(r.json(), token)

    async def device_ids(self, *, as_other: bool = False) -> list[str]:
        """Every device id the tenant's list shows (one page of up to 1,000)."""
        tenant, token = (self.other, self.other_token) if as_other else (self.tenant, self.token)
        r = await self.call("GET", f"/v2/tenants/{tenant.id}/devices", bearer=token)
        assert r.status_code == 200, r.text
        return [d["DeviceId"] for d in r.json()["Items"]]


@pytest.fixture
async def sphere(db: Database, tmp_path: Path) -> AsyncIterator[SphereApi]:
    """The app with the worker off, and two tenants: Contoso (the caller) and Fabrikam."""
    async with running_app(db, tmp_path / "data", FakeClock(), in_process_worker=False) as app:
        tenant, token = await app.ctx.sphere.create_tenant("Contoso")
        other, other_token = await app.ctx.sphere.create_tenant("Fabrikam")
        yield SphereApi(app, tenant, token, other, other_token)
