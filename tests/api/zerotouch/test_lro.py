"""The operation JSON while pending and running, and for operations the reseller dialect submitted."""

from __future__ import annotations

from datetime import UTC, datetime

from provisiond.api.zerotouch.lro import METADATA_TYPE, RESPONSE_TYPE, ZT_KINDS, operation_id, operation_out
from provisiond.domain.claims import ClaimItem, Operation, OperationKind, OperationState, UnclaimItem
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor
from tests.api.zerotouch.conftest import SECTION, Partner, assert_google_error, imei

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_a_pending_operation_says_pending_and_has_no_per_device_status_yet() -> None:
    op = Operation(7, OperationKind.CLAIM, 1, Vendor.GOOGLE, OperationState.PENDING, 10, 0, 0, NOW)
    assert operation_out(op, None) == {
        "name": "operations/apibatchoperation/7",
        "done": False,
        "metadata": {
            "@type": METADATA_TYPE,
            "processingStatus": "BATCH_PROCESS_PENDING",
            "progress": 0,
            "devicesCount": 10,
        },
        "response": {"@type": RESPONSE_TYPE, "successCount": 0},
    }


def test_a_running_operation_shows_progress_and_the_successes_so_far() -> None:
    op = Operation(7, OperationKind.UNCLAIM, 1, Vendor.GOOGLE, OperationState.IN_PROGRESS, 10, 4, 3, NOW)
    out = operation_out(op, None)
    assert out["done"] is False
    assert (
        out["metadata"]["processingStatus"] == "BATCH_PROCESS_IN_PROGRESS"
        and out["metadata"]["progress"] == 40
    )
    assert out["response"] == {"@type": RESPONSE_TYPE, "successCount": 3}


def test_operation_names_parse_back_to_their_id_and_nothing_else_does() -> None:
    assert operation_id("apibatchoperation/123") == 123
    assert operation_id("apibatchoperation/") is None
    assert operation_id("apibatchoperation/12/x") is None
    assert operation_id("google/12") is None


async def test_an_operation_submitted_by_another_dialect_is_rendered_from_its_core_items(
    partner: Partner,
) -> None:
    """The reseller dialect stores its own wire items; the zero-touch view rebuilds PartnerClaim/PartnerUnclaim."""
    core = partner.core
    customer = await partner.customer()
    identifier = DeviceIdentifier(imei=imei(1), manufacturer="Google")
    claims = partner.api.ctx.claims
    op = await claims.submit(
        core,
        OperationKind.CLAIM,
        Vendor.GOOGLE,
        [(ClaimItem(identifier, int(customer)), {"resellerItem": 1})],
    )
    done = await partner.wait({"name": f"operations/apibatchoperation/{op.id}", "done": False})
    [entry] = done["response"]["perDeviceStatus"]
    assert entry["claim"] == {
        "deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"},
        "sectionType": SECTION,
        "customerId": customer,
    }
    assert entry["result"]["status"] == "SINGLE_DEVICE_STATUS_SUCCESS"
    op = await claims.submit(
        core,
        OperationKind.UNCLAIM,
        Vendor.GOOGLE,
        [(UnclaimItem(int(entry["result"]["deviceId"]), None), None)],
    )
    done = await partner.wait({"name": f"operations/apibatchoperation/{op.id}", "done": False})
    assert done["response"]["perDeviceStatus"][0]["unclaim"] == {
        "deviceId": entry["result"]["deviceId"],
        "sectionType": SECTION,
    }


async def test_a_samsung_operation_is_not_visible_here(partner: Partner) -> None:
    core = partner.core
    op = await partner.api.ctx.claims.submit(core, OperationKind.CLAIM, Vendor.SAMSUNG, [])
    r = await partner.call("GET", f"/v1/operations/apibatchoperation/{op.id}")
    assert_google_error(r, 404, "NOT_FOUND")


async def test_operations_of_kinds_this_dialect_does_not_render_are_not_visible(partner: Partner) -> None:
    """Other dialects' kinds (Azure Sphere's) share the operation store; here they do not exist."""
    for kind in sorted(set(OperationKind) - ZT_KINDS):
        op = await partner.api.ctx.claims.submit(partner.core, kind, Vendor.GOOGLE, [])
        r = await partner.call("GET", f"/v1/operations/apibatchoperation/{op.id}")
        assert_google_error(r, 404, "NOT_FOUND")
