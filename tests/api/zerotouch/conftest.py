"""A zero-touch client on the in-process app (SQLite and PostgreSQL), for partners made in the core."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from provisiond.domain.claims import Partner as CorePartner
from provisiond.domain.device_identifiers import imei_check_digit
from tests.api.conftest import DpsApi

SECTION = "SECTION_TYPE_ZERO_TOUCH"


def imei(n: int) -> str:
    """A valid IMEI (TAC 35…, Luhn check digit) numbered ``n``."""
    body = f"35{n:012d}"
    return body + imei_check_digit(body)


def bad_imei(n: int) -> str:
    """An IMEI with a wrong check digit."""
    good = imei(n)
    return good[:14] + str((int(good[14]) + 1) % 10)


def ident(n: int, manufacturer: str = "Google") -> dict[str, str]:
    return {"imei": imei(n), "manufacturer": manufacturer}


def assert_google_error(r: httpx.Response, code: int, status: str) -> dict[str, Any]:
    """The response is Google's error body with this HTTP code and canonical status."""
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == code and error["status"] == status and error["message"], error
    return dict(error)


@dataclass
class Partner:
    """One partner: its id, token and a client that sends its bearer token."""

    api: DpsApi
    id: str
    token: str

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """``path`` is relative to ``/v1/partners/{id}`` unless it starts with ``/``; ``token``
        replaces this partner's own."""
        url = path if path.startswith("/") else f"/v1/partners/{self.id}/{path}"
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        return await self.api.http.request(
            method, url, json=json, content=content, params=params, headers=headers
        )

    @property
    def core(self) -> CorePartner:
        """This partner as the claims core knows it (to reach ``ctx.claims`` directly)."""
        return CorePartner(int(self.id), "")

    async def ok(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        r = await self.call(method, path, json=json, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    async def customer(self, name: str = "Acme") -> str:
        body = {
            "customer": {
                "companyName": name,
                "ownerEmails": [f"owner@{name.lower().replace(' ', '-')}.example"],
            }
        }
        company = await self.ok("POST", "customers", body)
        return str(company["companyId"])

    async def claim(self, customer: str, n: int, **extra: Any) -> str:
        body = {"customerId": customer, "sectionType": SECTION, "deviceIdentifier": ident(n), **extra}
        return str((await self.ok("POST", "devices:claim", body))["deviceId"])

    async def wait(self, op: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Poll operations.get until ``done``, as a client must (neither SDK polls by itself)."""
        deadline = time.monotonic() + timeout
        while not op.get("done"):
            assert time.monotonic() < deadline, f"operation not done after {timeout}s: {op}"
            await asyncio.sleep(0.05)
            op = await self.ok("GET", f"/v1/{op['name']}")
        return op

    async def run(self, verb: str, body: Any) -> dict[str, Any]:
        """Submit an async method and wait for its operation."""
        return await self.wait(await self.ok("POST", f"devices:{verb}", body))


async def settle_worker(api: DpsApi, timeout: float = 10) -> None:
    """Wait until the in-process worker has taken its last wake-up call.

    The app's shutdown cancels the worker; on Python 3.11 ``asyncio.wait_for`` swallows a
    cancellation that arrives while the wake event fires, and the shutdown then waits forever
    (a core issue in ``services/worker.py``). A test that ends right after a submit would hang.
    """
    deadline = time.monotonic() + timeout
    # Polling on purpose (ASYNC110): we wait for the event to be *cleared*, which Event cannot await.
    while api.ctx.worker.wake.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)


@pytest.fixture
async def partner(dps: DpsApi) -> AsyncIterator[Partner]:
    p, token = await dps.ctx.claims.create_partner("Reseller A")
    yield Partner(dps, str(p.id), token)
    await settle_worker(dps)


@pytest.fixture
async def other(dps: DpsApi) -> Partner:
    p, token = await dps.ctx.claims.create_partner("Reseller B")
    return Partner(dps, str(p.id), token)
