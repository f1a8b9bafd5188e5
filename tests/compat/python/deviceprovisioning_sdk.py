"""Drive Microsoft's generated DPS service client (azure-iot-deviceprovisioning) against provisiond.

Run by tests/compat/test_python_deviceprovisioning_sdk.py in .venv-compat: argv is the HTTPS port,
the owner policy's key and an id prefix; the environment trusts the server's CA. Prints one JSON
object of what the client saw (values, and the exception class of each expected refusal).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.iot.deviceprovisioning import DeviceProvisioningClient


def refusal(call: Any) -> str:
    try:
        call()
    except HttpResponseError as exc:
        return f"{type(exc).__name__} {exc.status_code}"
    return "accepted"


def main() -> None:
    port, key, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    client = DeviceProvisioningClient(
        f"https://localhost:{port}", AzureNamedKeyCredential("provisioningserviceowner", key)
    )
    rid, group = f"{prefix}-device", f"{prefix}-group"
    seen: dict[str, Any] = {}
    created = client.enrollment.create_or_update(
        id=rid,
        enrollment={
            "registrationId": rid,
            "attestation": {"type": "symmetricKey"},
            "initialTwin": {"tags": {"a": 1}},
        },
    )
    seen["created"] = created
    seen["got"] = client.enrollment.get(id=rid)
    stale = dict(created, etag='"not-the-etag"')
    seen["stale_update"] = refusal(
        lambda: client.enrollment.create_or_update(id=rid, enrollment=stale, if_match=stale["etag"])
    )
    updated = client.enrollment.create_or_update(
        id=rid, enrollment=dict(created, provisioningStatus="disabled"), if_match=created["etag"]
    )
    seen["updated"] = updated
    seen["attestation"] = client.enrollment.get_attestation_mechanism(id=rid)
    seen["bulk"] = client.enrollment.run_bulk_operation(
        bulk_operation={
            "mode": "create",
            "enrollments": [
                {"registrationId": f"{prefix}-bulk-{n}", "attestation": {"type": "symmetricKey"}}
                for n in range(3)
            ]
            + [{"registrationId": rid, "attestation": {"type": "symmetricKey"}}],
        }
    )
    seen["query"] = sorted(
        e["registrationId"] for e in client.enrollment.query(query_specification={"query": "*"})
    )
    seen["group"] = client.enrollment_group.create_or_update(
        id=group, enrollment_group={"enrollmentGroupId": group, "attestation": {"type": "symmetricKey"}}
    )
    seen["groups"] = [
        g["enrollmentGroupId"] for g in client.enrollment_group.query(query_specification={"query": "*"})
    ]
    seen["group_states"] = list(client.device_registration_state.query(id=group))
    seen["unknown_state"] = refusal(lambda: client.device_registration_state.get(id=f"{prefix}-nobody"))
    client.enrollment.delete(id=rid)
    client.enrollment_group.delete(id=group)
    seen["after_delete"] = refusal(lambda: client.enrollment.get(id=rid))
    wrong = DeviceProvisioningClient(
        f"https://localhost:{port}",
        AzureNamedKeyCredential("provisioningserviceowner", "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="),
    )
    seen["wrong_key"] = refusal(lambda: wrong.enrollment.get(id=f"{prefix}-bulk-0"))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
