"""Claiming devices through the Sphere API: 202 + Operation, its states, the conflict, the details."""

from __future__ import annotations

from datetime import timedelta

from provisiond.store import operations as op_repo
from tests.api.sphere.conftest import BASE, DEVICE_KEYS, OPERATION_KEYS, SphereApi, device_id


async def test_claim_answers_202_with_a_not_started_operation_and_a_location_to_poll(
    sphere: SphereApi,
) -> None:
    device = device_id(1)
    r = await sphere.call("PUT", f"{sphere.root}/devices/{device}/claim")
    assert r.status_code == 202
    assert r.headers["content-type"].startswith("application/json")
    op = r.json()
    assert set(op) == OPERATION_KEYS
    tenant_url = f"{BASE}/v2/tenants/{sphere.tenant.id}"
    assert r.headers["Location"] == f"{tenant_url}/operations/{op['OperationId']}"
    assert op["OperationType"] == 0 and op["State"] == 0
    assert op["TenantId"] == str(sphere.tenant.id)
    assert op["CreatedDateUTC"].endswith("Z")
    assert op["StartedDateUTC"] is None and op["CompletedDateUTC"] is None and op["Error"] is None
    assert op["ResourceLocation"] == f"{tenant_url}/devices/{device.upper()}"
    assert op["DetailsLocation"] == f"{tenant_url}/operations/{op['OperationId']}/details"
    assert await sphere.operation(op) == op  # polling before the worker ran shows the same


async def test_a_leased_operation_is_in_progress_with_a_start_date_only(sphere: SphereApi) -> None:
    r = await sphere.call("PUT", f"{sphere.root}/devices/{device_id(2)}/claim")
    clock = sphere.app.clock
    async with sphere.app.db.write() as conn:
        assert await op_repo.lease_next(conn, "test", clock(), clock() + timedelta(seconds=30))
    running = await sphere.operation(r.json())
    assert running["State"] == 1
    assert running["StartedDateUTC"] is not None
    assert running["CompletedDateUTC"] is None and running["Error"] is None
    clock.advance(60)  # the test's lease expires; the worker takes the operation over
    await sphere.work()
    assert (await sphere.operation(r.json()))["State"] == 2


async def test_a_completed_claim_has_every_date_no_error_and_the_device_is_the_tenants(
    sphere: SphereApi,
) -> None:
    device = device_id(3)
    done = await sphere.claim(device)
    assert done["State"] == 2 and done["Error"] is None
    assert done["StartedDateUTC"].endswith("Z") and done["CompletedDateUTC"].endswith("Z")
    r = await sphere.call("GET", f"{sphere.root}/devices/{device}")
    assert r.status_code == 200
    assert set(r.json()) == DEVICE_KEYS
    assert r.json() == {
        "DeviceId": device.upper(),
        "TenantId": str(sphere.tenant.id),
        "ChipSku": 0,
        "DeviceGroupId": None,
        "ProductId": None,
        "LastAvailableOSVersion": None,
        "LastInstalledOSVersion": None,
        "LastOSUpdateUTC": None,
        "LastUpdateRequestUTC": None,
    }


async def test_device_ids_compare_case_insensitively_and_are_stored_upper_case(sphere: SphereApi) -> None:
    device = "aB" * 64
    await sphere.claim(device)
    for spelling in (device, device.lower(), device.upper()):
        r = await sphere.call("GET", f"{sphere.root}/devices/{spelling}")
        assert r.status_code == 200 and r.json()["DeviceId"] == device.upper()
    assert await sphere.device_ids() == [device.upper()]


async def test_claiming_again_into_the_same_tenant_succeeds_without_change(sphere: SphereApi) -> None:
    device = device_id(4)
    await sphere.claim(device)
    before = (await sphere.call("GET", f"{sphere.root}/devices/{device}")).json()
    again = await sphere.claim(device.upper())
    assert again["State"] == 2 and again["Error"] is None
    assert (await sphere.call("GET", f"{sphere.root}/devices/{device}")).json() == before
    assert await sphere.device_ids() == [device.upper()]


async def test_a_device_of_another_tenant_fails_the_claim_with_conflict_and_stays_theirs(
    sphere: SphereApi,
) -> None:
    device = device_id(5)
    await sphere.claim(device, as_other=True)
    failed = await sphere.claim(device)
    assert failed["State"] == 3
    assert failed["Error"]["Code"] == 7 and failed["Error"]["Message"]
    assert set(failed["Error"]) == {"Code", "Message"}
    assert failed["CompletedDateUTC"] is not None
    r = await sphere.call("GET", f"{sphere.root}/devices/{device}")
    assert r.status_code == 404
    assert await sphere.device_ids(as_other=True) == [device.upper()]
    details = (await sphere.call("GET", failed["DetailsLocation"].removeprefix(BASE))).json()
    [item] = details["Items"]
    assert item["DeviceId"] == device.upper() and item["State"] == 3 and item["Error"]["Code"] == 7


async def test_bulk_claim_answers_202_with_a_bulk_operation_pointing_at_the_device_list(
    sphere: SphereApi,
) -> None:
    r = await sphere.call("PUT", f"{sphere.root}/devices", json=[device_id(10), device_id(11)])
    assert r.status_code == 202
    op = r.json()
    assert set(op) == OPERATION_KEYS
    assert op["OperationType"] == 11 and op["State"] == 0
    assert op["StartedDateUTC"] is None and op["CompletedDateUTC"] is None and op["Error"] is None
    assert op["ResourceLocation"] == f"{BASE}/v2/tenants/{sphere.tenant.id}/devices"
    assert r.headers["Location"] == f"{BASE}/v2/tenants/{sphere.tenant.id}/operations/{op['OperationId']}"
    await sphere.work()
    done = await sphere.operation(op)
    assert done["State"] == 2 and done["Error"] is None
    assert await sphere.device_ids() == [device_id(10).upper(), device_id(11).upper()]


async def test_bulk_claim_with_foreign_devices_completes_with_errors_and_details_give_each_reason(
    sphere: SphereApi,
) -> None:
    theirs, mine, new = device_id(20), device_id(21), device_id(22)
    await sphere.claim(theirs, as_other=True)
    await sphere.claim(mine)
    done = await sphere.bulk([new, theirs, mine, new.upper()])
    assert done["State"] == 4
    assert done["Error"]["Code"] == 7 and "1 of 4" in done["Error"]["Message"]
    r = await sphere.call("GET", done["DetailsLocation"].removeprefix(BASE))
    assert r.status_code == 200
    details = r.json()
    assert details["OperationId"] == done["OperationId"]
    assert [(i["DeviceId"], i["State"]) for i in details["Items"]] == [
        (new.upper(), 2),
        (theirs.upper(), 3),
        (mine.upper(), 2),
        (new.upper(), 2),
    ]
    assert details["Items"][1]["Error"]["Code"] == 7 and details["Items"][1]["Error"]["Message"]
    assert all(i["Error"] is None for i in details["Items"] if i["State"] == 2)
    assert sorted(await sphere.device_ids()) == sorted([new.upper(), mine.upper()])
    assert await sphere.device_ids(as_other=True) == [theirs.upper()]


async def test_details_of_an_operation_not_yet_run_show_every_device_not_started(sphere: SphereApi) -> None:
    r = await sphere.call("PUT", f"{sphere.root}/devices", json=[device_id(30), device_id(31)])
    details = (await sphere.call("GET", r.json()["DetailsLocation"].removeprefix(BASE))).json()
    assert details["Items"] == [
        {"DeviceId": device_id(30).upper(), "State": 0, "Error": None},
        {"DeviceId": device_id(31).upper(), "State": 0, "Error": None},
    ]


async def test_a_bulk_claim_of_exactly_1000_devices_is_accepted_and_claims_them_all(
    sphere: SphereApi,
) -> None:
    devices = [device_id(1000 + i) for i in range(1000)]
    done = await sphere.bulk(devices)
    assert done["State"] == 2
    r = await sphere.call("GET", f"{sphere.root}/devices", params={"maxPageSize": "1000"})
    assert len(r.json()["Items"]) == 1000 and r.json()["ContinuationToken"] is None
