"""One claims core, two dialects: a device claimed through the reseller model is seen, found and
unclaimed through zero-touch, and the other way round (in-process, SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import DpsApi

IMEI = "123456789012347"


async def call(http: httpx.AsyncClient, token: str, method: str, path: str, body: Any = None) -> Any:
    r = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


async def test_a_device_claimed_through_one_dialect_is_the_same_record_in_the_other(dps: DpsApi) -> None:
    partner, token = await dps.ctx.claims.create_partner("cross")
    zt = f"/v1/partners/{partner.id}"
    customer = await call(
        dps.http,
        token,
        "POST",
        f"{zt}/customers",
        {"customer": {"companyName": "Acme", "ownerEmails": ["it@acme.example"]}},
    )
    company = customer["companyId"]

    claimed = await call(
        dps.http,
        token,
        "POST",
        "/reseller/v1/claimDevice",
        {
            "deviceIdentifier": {"imei": IMEI, "manufacturer": "Google"},
            "customer": {"companyId": company, "vendor": "GOOGLE"},
        },
    )
    device_id = claimed["deviceId"].removeprefix("google/")

    found = await call(
        dps.http,
        token,
        "POST",
        f"{zt}/devices:findByIdentifier",
        {"deviceIdentifier": {"imei": IMEI, "manufacturer": "google"}, "limit": "10"},
    )
    assert [d["deviceId"] for d in found["devices"]] == [device_id]
    device = await call(dps.http, token, "GET", f"{zt}/devices/{device_id}")
    assert device["claims"][0]["ownerCompanyId"] == company

    await call(
        dps.http,
        token,
        "POST",
        f"{zt}/devices:unclaim",
        {"deviceId": device_id, "sectionType": "SECTION_TYPE_ZERO_TOUCH"},
    )
    by_owner = await call(
        dps.http,
        token,
        "POST",
        "/reseller/v1/findDevicesByOwner",
        {"customers": [{"companyId": company, "vendor": "GOOGLE"}]},
    )
    assert by_owner["devices"] == []

    again = await call(
        dps.http,
        token,
        "POST",
        f"{zt}/devices:claim",
        {
            "customerId": company,
            "sectionType": "SECTION_TYPE_ZERO_TOUCH",
            "deviceIdentifier": {"imei": IMEI, "manufacturer": "Google"},
        },
    )
    assert again["deviceId"] == device_id  # the same record, found by its identifier
    by_owner = await call(
        dps.http,
        token,
        "POST",
        "/reseller/v1/findDevicesByOwner",
        {"customers": [{"companyId": company, "vendor": "GOOGLE"}]},
    )
    assert [d["deviceId"] for d in by_owner["devices"]] == [f"google/{device_id}"]
