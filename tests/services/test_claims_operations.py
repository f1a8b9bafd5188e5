"""Claims core on both engines: an operation run by the worker, results in order, rules per item."""

from __future__ import annotations

from provisiond.domain.claims import (
    ClaimItem,
    ItemStatus,
    OperationKind,
    OperationState,
    SectionType,
    UnclaimItem,
)
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor, imei_check_digit
from provisiond.services.claims import ClaimsService
from provisiond.services.worker import OperationWorker
from provisiond.store.db import Database


def imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + imei_check_digit(body)


async def test_claim_operation_runs_to_completion_with_per_item_results_in_order(db: Database) -> None:
    service = ClaimsService(db)
    partner, _ = await service.create_partner("reseller")
    customer = await service.create_customer(partner, "Acme", Vendor.GOOGLE)
    items = [
        (
            ClaimItem(
                DeviceIdentifier(imei=imei(n), manufacturer="Google"), customer.id, SectionType.ZERO_TOUCH
            ),
            {"n": n},
        )
        for n in range(30)
    ]
    items[5] = (ClaimItem(DeviceIdentifier(imei="123", manufacturer="Google"), customer.id), {"n": 5})
    items[7] = (ClaimItem(DeviceIdentifier(imei=imei(7), manufacturer="Nobody Inc"), customer.id), {"n": 7})
    items[9] = (ClaimItem(DeviceIdentifier(imei=imei(9), manufacturer="Google"), 424242), {"n": 9})
    items[11] = (
        ClaimItem(DeviceIdentifier(imei=imei(10), manufacturer="GOOGLE"), customer.id),
        {"n": 11},
    )  # same device as item 10
    op = await service.submit(partner, OperationKind.CLAIM, Vendor.GOOGLE, items)
    worker = OperationWorker(db, batch_size=7)
    assert await worker.run_once()
    done = await service.operation(partner, op.id)
    assert done.state is OperationState.COMPLETE_WITH_ERRORS and done.processed == 30 and done.progress == 100
    results = await service.operation_results(done)
    assert [wire["n"] for _, wire, _ in results] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, *range(12, 30)]
    status = {i: r.status for i, (_, _, r) in enumerate(results) if r is not None}
    assert status[5] is ItemStatus.INVALID_IDENTIFIER and results[5][2].code == "INVALID_DEVICE_IMEI"  # type: ignore[union-attr]
    assert results[7][2].code == "INVALID_MANUFACTURER"  # type: ignore[union-attr]
    assert status[9] is ItemStatus.PERMISSION_DENIED
    assert status[11] is ItemStatus.DUPLICATE and results[11][2].device_id == results[10][2].device_id  # type: ignore[union-attr]
    assert done.succeeded == 27
    device = await service.device(partner, results[0][2].device_id)  # type: ignore[union-attr]
    assert device.claims[0].customer_id == customer.id

    unclaim = await service.submit(
        partner, OperationKind.UNCLAIM, Vendor.GOOGLE, [(UnclaimItem(results[0][2].device_id, None), {})]
    )  # type: ignore[union-attr]
    await worker.run_once()
    assert (await service.operation(partner, unclaim.id)).state is OperationState.COMPLETE


async def test_another_partners_customer_and_devices_are_refused_and_hidden(db: Database) -> None:
    service = ClaimsService(db)
    a, _ = await service.create_partner("a")
    b, _ = await service.create_partner("b")
    customer_a = await service.create_customer(a, "A corp", Vendor.GOOGLE)
    customer_b = await service.create_customer(b, "B corp", Vendor.GOOGLE)
    ident = DeviceIdentifier(imei=imei(1), manufacturer="Google")
    result = await service.apply_now(a, OperationKind.CLAIM, Vendor.GOOGLE, ClaimItem(ident, customer_a.id))
    assert result.status is ItemStatus.SUCCESS
    stolen = await service.apply_now(b, OperationKind.CLAIM, Vendor.GOOGLE, ClaimItem(ident, customer_b.id))
    assert stolen.status is ItemStatus.SECTION_NOT_YOURS
    wrong_customer = await service.apply_now(
        b, OperationKind.CLAIM, Vendor.GOOGLE, ClaimItem(ident, customer_a.id)
    )
    assert wrong_customer.status is ItemStatus.PERMISSION_DENIED
    unclaim = await service.apply_now(
        b, OperationKind.UNCLAIM, Vendor.GOOGLE, UnclaimItem(result.device_id, None)
    )
    assert unclaim.status is ItemStatus.SECTION_NOT_YOURS
