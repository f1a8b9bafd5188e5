"""Drive the OLD official Python DPS service SDK (azure-iothub-provisioningserviceclient 1.2.0).

Run with the compat interpreter (``.venv-compat/bin/python``), never the server's. Reads
``TEST_CA_PEM``, ``DPS_HTTPS_PORT`` and ``DPS_KEY`` from the environment; the registration-id prefix
comes from ``argv[1]`` or ``DPS_ID_PREFIX`` so runs against a shared server do not collide.

Prints ONE JSON line of observations on stdout. Every step is recorded under its own key; a step that
raised something it was not meant to is recorded as ``{"unexpected": "..."}``, listed under
``"unexpected"``, its traceback goes to stderr, and the script exits 1.

SDK bugs of 1.2.0 worked around: ``as_dict()`` on an enrollment carrying an initial twin raises, so
attributes are read one by one; registration-state queries always raise ``TypeError`` in this SDK,
so they are not exercised.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from provisioningserviceclient import (
    BULKOP_CREATE,
    BulkEnrollmentOperation,
    EnrollmentGroup,
    IndividualEnrollment,
    ProvisioningServiceClient,
    ProvisioningServiceError,
    QuerySpecification,
)
from provisioningserviceclient.models import (
    AttestationMechanism,
    DeviceCapabilities,
    InitialTwin,
    ReprovisionPolicy,
)
from provisioningserviceclient.protocol.models import SymmetricKeyAttestation

# Fixed throwaway keys (base64 of 32 bytes) so the test can assert the exact values echoed back.
DEVICE_PRIMARY = "ZGV2aWNlLXByaW1hcnkta2V5LWZvci1jb21wYXQtdGVzdHM="
DEVICE_SECONDARY = "ZGV2aWNlLXNlY29uZGFyeS1rZXktZm9yLWNvbXBhdC10ZXM="
GROUP_PRIMARY = "Z3JvdXAtcHJpbWFyeS1rZXktZm9yLWNvbXBhdC10ZXN0cyE="
GROUP_SECONDARY = "Z3JvdXAtc2Vjb25kYXJ5LWtleS1mb3ItY29tcGF0LXRlc3Q="

BULK_COUNT = 4  # bulk create items; with the individual enrollment: 5 of ours in the query
PAGE_SIZE = 2  # smaller than the number of enrollments, so the query spans >= 3 pages


def symmetric_key(primary: str, secondary: str) -> AttestationMechanism:
    return AttestationMechanism(
        type="symmetricKey",
        symmetric_key=SymmetricKeyAttestation(primary_key=primary, secondary_key=secondary),
    )


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def attestation_view(att: Any) -> dict[str, Any] | None:
    if att is None:
        return None
    sk = att.symmetric_key
    return {
        "type": att.type,
        "primary_key": sk.primary_key if sk is not None else None,
        "secondary_key": sk.secondary_key if sk is not None else None,
    }


def twin_view(twin: Any) -> dict[str, Any] | None:
    """Read the wrapped InitialTwin's attributes (``as_dict()`` raises on it: SDK bug)."""
    if twin is None:
        return None
    return {"tags": twin.tags, "desired_properties": twin.desired_properties}


def enrollment_view(e: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "class": type(e).__name__,
        "attestation": attestation_view(e.attestation),
        "etag": e.etag,
        "provisioning_status": e.provisioning_status,
        "created_date_time_utc": iso(e.created_date_time_utc),
        "last_updated_date_time_utc": iso(e.last_updated_date_time_utc),
        "initial_twin": twin_view(e.initial_twin),
        "reprovision_policy": (
            {
                "update_hub_assignment": e.reprovision_policy.update_hub_assignment,
                "migrate_device_data": e.reprovision_policy.migrate_device_data,
            }
            if e.reprovision_policy is not None
            else None
        ),
    }
    if isinstance(e, IndividualEnrollment):
        view["registration_id"] = e.registration_id
        view["device_id"] = e.device_id
        view["capabilities"] = {"iot_edge": e.capabilities.iot_edge} if e.capabilities is not None else None
    else:
        view["enrollment_group_id"] = e.enrollment_group_id
    return view


def expect_service_error(call: Callable[[], Any]) -> dict[str, Any]:
    """Run a call that should fail with ProvisioningServiceError; record how it failed."""
    try:
        result = call()
    except ProvisioningServiceError as exc:
        cause = exc.cause
        response = getattr(cause, "response", None)
        return {
            "error": type(exc).__name__,
            "message": str(exc),
            "status": getattr(response, "status_code", None),
        }
    return {"error": None, "returned": repr(result)}


def build_client(port: str, key: str) -> ProvisioningServiceClient:
    conn = f"HostName=localhost:{port};SharedAccessKeyName=provisioningserviceowner;SharedAccessKey={key}"
    client = ProvisioningServiceClient.create_from_connection_string(conn)
    config = client._runtime_client.config  # private attribute: the SDK is pinned
    config.connection.verify = os.environ["TEST_CA_PEM"]  # wins over a preset REQUESTS_CA_BUNDLE
    config.retry_policy.retries = 0
    return client


def collect_query(query: Any, page_log: list[dict[str, Any]]) -> list[list[Any]]:
    """Page with has_next / next() until the server says there is no more; never call past the end."""
    original = query._query_fn

    def recording(spec: Any, page_size: Any, continuation: Any, raw: bool = False) -> Any:
        resp = original(spec, page_size, continuation, raw=raw)
        page_log.append(
            {
                "sent_max_item_count": resp.response.request.headers.get("x-ms-max-item-count"),
                "sent_continuation": continuation is not None,
                "item_type": resp.headers.get("x-ms-item-type"),
                "continuation": resp.headers.get("x-ms-continuation"),
                "content_type": resp.response.headers.get("Content-Type"),
                "count": len(resp.output or []),
            }
        )
        return resp

    query._query_fn = recording
    pages: list[list[Any]] = []
    while query.has_next:
        if len(pages) >= 500:
            raise RuntimeError("query did not end after 500 pages")
        pages.append(query.next())
    return pages


def main() -> int:
    prefix = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DPS_ID_PREFIX", "pysvc")).lower()
    client = build_client(os.environ["DPS_HTTPS_PORT"], os.environ["DPS_KEY"])

    reg_id = f"{prefix}-dev"
    group_id = f"{prefix}-group"
    bulk_ids = [f"{prefix}-bulk-{i}" for i in range(BULK_COUNT)]
    ours = sorted([reg_id, *bulk_ids])

    obs: dict[str, Any] = {"prefix": prefix, "reg_id": reg_id, "group_id": group_id, "bulk_ids": bulk_ids}
    unexpected: list[str] = []
    state: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], Any]) -> None:
        try:
            obs[name] = fn()
        except Exception as exc:
            obs[name] = {"unexpected": f"{type(exc).__name__}: {exc}"}
            unexpected.append(name)
            print(f"--- step {name} raised:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)

    # Individual enrollment: symmetric key, initial twin, capabilities, reprovision policy.
    def create_individual() -> dict[str, Any]:
        enrollment = IndividualEnrollment.create(
            reg_id,
            symmetric_key(DEVICE_PRIMARY, DEVICE_SECONDARY),
            device_id=f"{prefix}-device",
            initial_twin=InitialTwin.create(tags={"site": "lab"}, desired_properties={"interval": 30}),
            device_capabilities=DeviceCapabilities.create(iot_edge=True),
            reprovision_policy=ReprovisionPolicy(update_hub_assignment=False, migrate_device_data=True),
        )
        created = client.create_or_update(enrollment)
        state["created"] = created
        return enrollment_view(created)

    step("create_individual", create_individual)

    def get_individual() -> dict[str, Any]:
        got = client.get_individual_enrollment(reg_id)
        state["got"] = got
        return enrollment_view(got)

    step("get_individual", get_individual)

    step(
        "attestation_mechanism",
        lambda: attestation_view(client.get_individual_enrollment_attestation_mechanism(reg_id)),
    )

    # Update the enrollment read back from the server: its etag goes out as If-Match.
    def update_individual() -> dict[str, Any]:
        got = state["got"]
        stale_etag = got.etag
        got.device_id = f"{prefix}-device-renamed"
        updated = client.create_or_update(got)
        state["updated"] = updated
        view = enrollment_view(updated)
        view["etag_before"] = stale_etag
        # Now reuse the old etag: the server must refuse with 412.
        stale = IndividualEnrollment.create(reg_id, symmetric_key(DEVICE_PRIMARY, DEVICE_SECONDARY))
        stale.etag = stale_etag
        view["stale_put"] = expect_service_error(lambda: client.create_or_update(stale))
        return view

    step("update_individual", update_individual)

    # An id using every allowed special character (msrest percent-encodes ':' in the path), read back
    # in upper case: ids are case-insensitive.
    def special_id() -> dict[str, Any]:
        rid = f"{prefix}:dev.special_1"
        created = client.create_or_update(
            IndividualEnrollment.create(rid, symmetric_key(DEVICE_PRIMARY, DEVICE_SECONDARY))
        )
        upper = client.get_individual_enrollment(rid.upper())
        client.delete_individual_enrollment_by_param(rid)
        return {
            "id": rid,
            "created": created.registration_id,
            "get_upper": upper.registration_id,
            "get_after": expect_service_error(lambda: client.get_individual_enrollment(rid)),
        }

    step("special_id", special_id)

    # Enrollment group, symmetric key.
    def create_group() -> dict[str, Any]:
        group = EnrollmentGroup.create(
            group_id,
            symmetric_key(GROUP_PRIMARY, GROUP_SECONDARY),
            initial_twin=InitialTwin.create(tags={"fleet": "a"}, desired_properties={"mode": "x"}),
        )
        return enrollment_view(client.create_or_update(group))

    step("create_group", create_group)

    def get_group() -> dict[str, Any]:
        got = client.get_enrollment_group(group_id)
        state["group"] = got
        return enrollment_view(got)

    step("get_group", get_group)

    step(
        "group_attestation_mechanism",
        lambda: attestation_view(client.get_enrollment_group_attestation_mechanism(group_id)),
    )

    # Bulk create of a few individual enrollments, then a bulk create that repeats an existing id.
    def bulk_item(rid: str) -> Any:
        return IndividualEnrollment.create(rid, symmetric_key(DEVICE_PRIMARY, DEVICE_SECONDARY))

    def bulk_create() -> dict[str, Any]:
        items = [bulk_item(r) for r in bulk_ids]
        result = client.run_bulk_operation(BulkEnrollmentOperation(BULKOP_CREATE, items))
        fetched = {r: client.get_individual_enrollment(r).registration_id for r in bulk_ids}
        return {
            "is_successful": result.is_successful,
            "errors": [e.registration_id for e in result.errors or []],
            "fetched": fetched,
        }

    step("bulk_create", bulk_create)

    def bulk_conflict() -> dict[str, Any]:
        result = client.run_bulk_operation(BulkEnrollmentOperation(BULKOP_CREATE, [bulk_item(bulk_ids[0])]))
        return {
            "is_successful": result.is_successful,
            "errors": [
                {
                    "registration_id": e.registration_id,
                    "error_code": e.error_code,
                    "error_status": e.error_status,
                }
                for e in result.errors or []
            ],
        }

    step("bulk_conflict", bulk_conflict)

    step(
        "bulk_too_many",
        lambda: expect_service_error(
            lambda: client.run_bulk_operation(
                BulkEnrollmentOperation(BULKOP_CREATE, [bulk_item(f"{prefix}-many-{i}") for i in range(11)])
            )
        ),
    )

    # Query every individual enrollment, PAGE_SIZE at a time.
    def query_individuals() -> dict[str, Any]:
        page_log: list[dict[str, Any]] = []
        query = client.create_individual_enrollment_query(
            QuerySpecification(query="SELECT * FROM enrollments"), page_size=PAGE_SIZE
        )
        pages = collect_query(query, page_log)
        ids = [e.registration_id for page in pages for e in page]
        return {
            "page_sizes": [len(p) for p in pages],
            "classes": sorted({type(e).__name__ for page in pages for e in page}),
            "total": len(ids),
            "distinct": len(set(ids)),
            "ours": sorted(i for i in ids if i in ours),
            "has_next_after": query.has_next,
            "pages": page_log,
        }

    step("query_individuals", query_individuals)

    def query_groups() -> dict[str, Any]:
        page_log: list[dict[str, Any]] = []
        query = client.create_enrollment_group_query(QuerySpecification(query="*"), page_size=1)
        pages = collect_query(query, page_log)
        ids = [g.enrollment_group_id for page in pages for g in page]
        return {
            "page_sizes": [len(p) for p in pages],
            "total": len(ids),
            "distinct": len(set(ids)),
            "ours": [i for i in ids if i == group_id],
            "has_next_after": query.has_next,
            "pages": page_log,
        }

    step("query_groups", query_groups)

    # Deletes: by id, by object with a stale etag (412), by object with the current etag.
    def delete_by_id() -> dict[str, Any]:
        client.delete_individual_enrollment_by_param(bulk_ids[0])
        return {
            "deleted": bulk_ids[0],
            "get_after": expect_service_error(lambda: client.get_individual_enrollment(bulk_ids[0])),
        }

    step("delete_by_id", delete_by_id)

    def delete_by_object() -> dict[str, Any]:
        current = client.get_individual_enrollment(reg_id)
        stale = client.get_individual_enrollment(reg_id)
        stale.etag = state["got"].etag  # the etag from before the update
        stale_delete = expect_service_error(lambda: client.delete(stale))
        still_there = client.get_individual_enrollment(reg_id).registration_id
        client.delete(current)
        return {
            "stale_delete": stale_delete,
            "still_there_after_stale": still_there,
            "get_after": expect_service_error(lambda: client.get_individual_enrollment(reg_id)),
        }

    step("delete_by_object", delete_by_object)

    def delete_group() -> dict[str, Any]:
        client.delete(client.get_enrollment_group(group_id))
        return {"get_after": expect_service_error(lambda: client.get_enrollment_group(group_id))}

    step("delete_group", delete_group)

    step(
        "delete_missing",
        lambda: expect_service_error(lambda: client.delete_individual_enrollment_by_param(f"{prefix}-never")),
    )

    # Leave the shared server as we found it.
    def cleanup() -> list[str]:
        for rid in bulk_ids[1:]:
            client.delete_individual_enrollment_by_param(rid)
        return bulk_ids[1:]

    step("cleanup", cleanup)

    obs["unexpected"] = unexpected
    print(json.dumps(obs, sort_keys=True))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
