"""A partner's client for the reseller dialect, on the in-process app (both database engines)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from provisiond.domain.claims import Partner
from provisiond.domain.device_identifiers import imei_check_digit
from tests.api.conftest import DpsApi

__all__ = ["Reseller", "assert_error", "claim", "imei"]


def imei(n: int, tac: str = "35") -> str:
    """A valid IMEI (Luhn check digit) numbered ``n``."""
    body = f"{tac}{n:012d}"
    return body + imei_check_digit(body)


def claim(customer: dict[str, Any], n: int, **identifier: str) -> dict[str, Any]:
    """A DeviceClaim of device ``n`` (a Google phone unless ``identifier`` says otherwise)."""
    ident = identifier or {"imei": imei(n), "manufacturer": "Google"}
    return {"deviceIdentifier": ident, "customer": customer["companyReference"]}


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is ``{"error": Error}`` with this status and code, every Error field present."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert set(error) == {"code", "message", "vendorMsg", "errorId", "vendorParams"}
    assert error["code"] == code, error
    assert error["message"] and error["errorId"]
    return error


@dataclass
class Reseller:
    """One partner calling ``POST /reseller/v1/{method}`` with its bearer token."""

    api: DpsApi
    partner: Partner
    token: str

    async def call(
        self, method: str, body: Any = None, *, content: bytes | None = None, token: str | None = None
    ) -> httpx.Response:
        """``body`` as JSON, or ``content`` as given; with this partner's token unless ``token``."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if content is None and body is not None:
            return await self.api.http.post(f"/reseller/v1/{method}", json=body, headers=headers)
        return await self.api.http.post(f"/reseller/v1/{method}", content=content or b"", headers=headers)

    async def ok(self, method: str, body: Any = None) -> dict[str, Any]:
        r = await self.call(method, body if body is not None else {})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        result: dict[str, Any] = r.json()
        return result

    async def customer(self, name: str = "Acme", vendor: str = "GOOGLE") -> dict[str, Any]:
        return await self.ok("createCustomer", {"companyName": name, "companyReference": {"vendor": vendor}})

    async def wait(self, operation_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll getOperation until the operation is no longer IN_PROGRESS."""
        async with asyncio.timeout(timeout):
            while True:
                op = await self.ok("getOperation", {"operationId": operation_id})
                if op["state"] != "IN_PROGRESS":
                    return op
                await asyncio.sleep(0.05)

    async def run(self, method: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """An async method's operations, each polled to its end (failed ones as answered)."""
        answered = (await self.ok(method, body))["operations"]
        return [await self.wait(op["operationId"]) if op["operationId"] else op for op in answered]


async def _partner(api: DpsApi, name: str) -> Reseller:
    partner, token = await api.ctx.claims.create_partner(name)
    return Reseller(api, partner, token)


@pytest.fixture
async def reseller(dps: DpsApi) -> AsyncIterator[Reseller]:
    yield await _partner(dps, "reseller-a")


@pytest.fixture
async def other(dps: DpsApi) -> AsyncIterator[Reseller]:
    """A second partner of the same server, for isolation tests."""
    yield await _partner(dps, "reseller-b")
