"""The reseller dialect's main workflow against a real ``provisiond serve`` over HTTPS (plain httpx:
the model has no HTTP client of its own): partners from the CLI, customers of both vendors, a sync
claim, a 1,000-device async claim with some invalid devices polled to its end, finding, unclaiming,
listing operations, and the refusals a client meets first."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisiond.domain.device_identifiers import imei_check_digit
from tests.support.server import ServerProcess


def imei(n: int, tac: str = "35") -> str:
    body = f"{tac}{n:012d}"
    return body + imei_check_digit(body)


class Partner:
    """A partner created with ``provisiond partner create NAME --json``, calling the dialect."""

    def __init__(self, server: ServerProcess, client: httpx.Client, name: str) -> None:
        out = json.loads(server.cli("partner", "create", name, "--json").stdout)
        assert set(out) == {"partnerId", "token"}
        self.client, self.token = client, out["token"]

    def call(self, method: str, body: Any) -> httpx.Response:
        return self.client.post(
            f"/reseller/v1/{method}", json=body, headers={"Authorization": f"Bearer {self.token}"}
        )

    def ok(self, method: str, body: Any) -> dict[str, Any]:
        r = self.call(method, body)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        answer: dict[str, Any] = r.json()
        return answer

    def wait(self, operation_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            op = self.ok("getOperation", {"operationId": operation_id})
            if op["state"] != "IN_PROGRESS":
                return op
            assert time.monotonic() < deadline, f"{operation_id} still in progress: {op['vendorParams']}"
            time.sleep(0.1)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, verify=ssl.create_default_context(cafile=server.ca), timeout=60
    ) as http:
        yield http


def test_reseller_workflow_over_https(server: ServerProcess, client: httpx.Client) -> None:
    reseller = Partner(server, client, "contract-reseller")

    google = reseller.ok("createCustomer", {"companyName": "Acme", "companyReference": {"vendor": "Google"}})
    samsung = reseller.ok(
        "createCustomer", {"companyName": "Globex", "companyReference": {"vendor": "SAMSUNG"}}
    )
    assert (
        google["companyReference"]["vendor"] == "GOOGLE"
        and samsung["companyReference"]["vendor"] == "SAMSUNG"
    )
    listed = reseller.ok("listCustomers", {"pageSize": 1})
    assert listed["totalCount"] == 2 and listed["nextPageToken"]
    rest = reseller.ok("listCustomers", {"pageSize": 1, "pageToken": listed["nextPageToken"]})
    assert rest["nextPageToken"] == ""
    assert {c["companyName"] for c in listed["customers"] + rest["customers"]} == {"Acme", "Globex"}

    first = reseller.ok(
        "claimDevice",
        {
            "deviceIdentifier": {"imei": imei(0), "manufacturer": "Google"},
            "customer": google["companyReference"],
            "orderNumber": "PO-1",
        },
    )
    assert first["deviceId"].startswith("google/")

    # 1,000 devices: 900 Google (ten with a bad IMEI; item 0 is the device claimed above, so a
    # duplicate) and 100 Samsung named by an IMEI alone
    claims: list[dict[str, Any]] = []
    for n in range(1000):
        if n % 10 == 9:
            claims.append(
                {"deviceIdentifier": {"imei": imei(n, "49")}, "customer": samsung["companyReference"]}
            )
        else:
            ident = {"imei": imei(n) if n % 100 != 50 else "1234", "manufacturer": "Google"}
            claims.append({"deviceIdentifier": ident, "customer": google["companyReference"]})
    answered = reseller.ok("claimDevicesAsync", {"claims": claims})["operations"]
    assert [op["operationId"].split("/")[0] for op in answered] == ["google", "samsung"]
    google_op, samsung_op = (reseller.wait(op["operationId"]) for op in answered)
    assert google_op["state"] == "COMPLETE_WITH_ERRORS" and samsung_op["state"] == "COMPLETE"
    codes = [(e["deviceIdentifier"]["imei"], e["error"]["code"]) for e in google_op["deviceErrors"]]
    bad = [
        (claims[n]["deviceIdentifier"]["imei"], "INVALID_DEVICE_IMEI") for n in range(1000) if n % 100 == 50
    ]
    assert codes == [(imei(0), "DUPLICATE_DEVICE"), *bad]
    assert google_op["deviceErrors"][0]["error"]["vendorParams"] == {"deviceId": first["deviceId"]}
    assert google_op["vendorParams"]["devicesCount"] == "900"

    owned, token = [], None
    while True:
        page = reseller.ok(
            "findDevicesByOwner", {"customers": [google["companyReference"]], "pageToken": token}
        )
        owned += page["devices"]
        token = page["nextPageToken"]
        if not token:
            break
    assert len(owned) == page["totalCount"] == 890  # 900 less the ten bad IMEIs
    assert all(d["deviceId"].startswith("google/") for d in owned)
    found = reseller.ok("findDevicesByDeviceIdentifier", {"deviceIdentifier": {"imei": imei(19, "49")}})
    [samsung_device] = found["devices"]
    assert (
        samsung_device["deviceId"].startswith("samsung/")
        and samsung_device["customer"] == samsung["companyReference"]
    )

    assert reseller.ok("unclaimDevice", {"deviceId": first["deviceId"]})["deviceId"] == first["deviceId"]
    unclaims = [{"deviceId": samsung_device["deviceId"]}, {"deviceIdentifier": {"imei": imei(29, "49")}}]
    [unclaimed] = reseller.ok(
        "unclaimDevicesAsync",
        {"unclaims": unclaims, "vendorParams": {"customerId": samsung["companyReference"]["companyId"]}},
    )["operations"]
    assert reseller.wait(unclaimed["operationId"])["state"] == "COMPLETE"
    remaining = reseller.ok("findDevicesByOwner", {"customers": [samsung["companyReference"]]})
    assert remaining["totalCount"] == 98

    ops = reseller.ok("listOperations", {"operationType": "CLAIM_DEVICES"})
    assert {op["operationId"] for op in ops["operations"]} == {
        google_op["operationId"],
        samsung_op["operationId"],
    }
    assert ops["nextPageToken"] == ""
    assert reseller.ok("listOperations", {"state": "COMPLETE_WITH_ERRORS"})["totalCount"] == 1

    # what a client meets first when something is wrong
    stranger = Partner(server, client, "contract-stranger")
    r = stranger.call("getOperation", {"operationId": google_op["operationId"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "AUTHORIZATION_FAIL"
    r = client.post("/reseller/v1/listCustomers", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "AUTHORIZATION_FAIL"
    r = client.post(
        "/reseller/v1/listCustomers", content=b"{oops", headers={"Authorization": f"Bearer {reseller.token}"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_PARAM_DEFAULT"
    r = reseller.call("claimDevice", claims[9])
    assert r.status_code == 501 and r.json()["error"]["code"] == "NOT_IMPLEMENTED"
    r = reseller.call("transferDevices", {})
    assert r.status_code == 501 and set(r.json()["error"]) == {
        "code",
        "message",
        "vendorMsg",
        "errorId",
        "vendorParams",
    }
