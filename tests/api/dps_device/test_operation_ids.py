"""An operation id that this service could never have handed out is answered 404 in DPS's format
on both engines, never a 500 (fuzz finding: PostgreSQL refused a NUL in the poll's query)."""

from __future__ import annotations

import pytest

from tests.api.conftest import DpsApi
from tests.api.dps_device.conftest import DEVICE_API, enroll_group, group_device


@pytest.mark.parametrize("operation_id", ["%00", "4.ab%00cd", "%C3%A9t%C3%A9", "4." + "a" * 63, "a b"])
async def test_a_poll_for_an_impossible_operation_id_is_a_404(dps: DpsApi, operation_id: str) -> None:
    await enroll_group(dps, "group-1")
    device = group_device(dps, "member-1")
    r = await dps.http.get(
        f"/{dps.init.id_scope}/registrations/member-1/operations/{operation_id}",
        params={"api-version": DEVICE_API},
        headers={"Authorization": device.token()},
    )
    assert r.status_code == 404, r.text
    assert r.json()["errorCode"] == 404201 and r.headers["x-ms-error-code"] == "404201"


async def test_the_check_leaves_real_operation_ids_alone(dps: DpsApi) -> None:
    await enroll_group(dps, "group-1")
    device = group_device(dps, "member-1")
    r = await device.register()
    assert r.status_code == 202, r.text
    dps.clock.advance(1)
    polled = await device.poll(r.json()["operationId"])
    assert polled.status_code == 200 and polled.json()["status"] == "failed"  # no hub linked
