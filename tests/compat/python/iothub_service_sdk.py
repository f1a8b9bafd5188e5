"""Drive the official Python IoT Hub service SDK (azure-iot-hub) against a hub's registry API.

Run with the compat interpreter (``.venv-compat/bin/python``). Reads ``HUB_CONNECTION_STRING``
(its HostName is where the hub is), ``HUB_WRONG_KEY_CONNECTION_STRING`` and
``HUB_READ_ONLY_CONNECTION_STRING`` from the environment; trusts the CA in ``REQUESTS_CA_BUNDLE``.

Prints ONE JSON line of observations: per step, what the SDK returned or the HTTP status of the
``HttpOperationError`` it raised; anything else is recorded as ``{"unexpected": …}`` and the script
exits 1.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import Twin
from msrest.exceptions import HttpOperationError

PRIMARY = base64.b64encode(b"p" * 32).decode()
SECONDARY = base64.b64encode(b"s" * 32).decode()
THUMB1 = "A" * 64
THUMB2 = "B" * 64

obs: dict[str, Any] = {"unexpected": []}


def step(name: str, action: Callable[[], Any]) -> Any:
    try:
        obs[name] = action()
    except HttpOperationError as exc:
        response = exc.response
        obs[name] = {
            "status": response.status_code,
            "errorCode": response.headers.get("iothub-errorcode"),
            "body": response.text,
        }
    except Exception as exc:  # recorded and reported; the script goes on
        traceback.print_exc()
        obs[name] = {"unexpected": f"{type(exc).__name__}: {exc}"}
        obs["unexpected"].append(name)
    return obs[name]


def device(d: Any) -> dict[str, Any]:
    auth = d.authentication
    return {
        "deviceId": d.device_id,
        "etag": d.etag,
        "generationId": d.generation_id,
        "type": auth.type,
        "keys": [auth.symmetric_key.primary_key, auth.symmetric_key.secondary_key]
        if auth.symmetric_key
        else None,
        "thumbprints": [auth.x509_thumbprint.primary_thumbprint, auth.x509_thumbprint.secondary_thumbprint]
        if auth.x509_thumbprint
        else None,
        "iotEdge": d.capabilities.iot_edge if d.capabilities else None,
    }


def main() -> int:
    rm = IoTHubRegistryManager.from_connection_string(os.environ["HUB_CONNECTION_STRING"])
    wrong = IoTHubRegistryManager.from_connection_string(os.environ["HUB_WRONG_KEY_CONNECTION_STRING"])
    read_only = IoTHubRegistryManager.from_connection_string(os.environ["HUB_READ_ONLY_CONNECTION_STRING"])
    step(
        "create_sas",
        lambda: device(rm.create_device_with_sas("sdk-sas", PRIMARY, SECONDARY, "enabled", True)),
    )
    step("create_again", lambda: device(rm.create_device_with_sas("sdk-sas", PRIMARY, SECONDARY, "enabled")))
    step("get", lambda: device(rm.get_device("sdk-sas")))
    etag = obs["get"].get("etag") if isinstance(obs["get"], dict) else None
    step(
        "update_with_etag",
        lambda: device(rm.update_device_with_sas("sdk-sas", etag, SECONDARY, PRIMARY, "enabled")),
    )
    step(
        "update_with_stale_etag",
        lambda: device(rm.update_device_with_sas("sdk-sas", etag, PRIMARY, SECONDARY, "enabled")),
    )
    step(
        "update_missing",
        lambda: device(rm.update_device_with_sas("sdk-none", "*", PRIMARY, SECONDARY, "enabled")),
    )
    step("create_x509", lambda: device(rm.create_device_with_x509("sdk-x509", THUMB1, THUMB2, "enabled")))
    step("create_ca", lambda: device(rm.create_device_with_certificate_authority("sdk-ca", "enabled", True)))
    step(
        "update_twin",
        lambda: rm.update_twin(
            "sdk-sas", Twin(tags={"site": "eu"}, properties={"desired": {"interval": 30}}), "*"
        ).as_dict(),
    )
    step(
        "update_twin_remove",
        lambda: rm.update_twin("sdk-sas", Twin(properties={"desired": {"interval": None}}), "*").as_dict(),
    )
    step("get_twin", lambda: rm.get_twin("sdk-sas").as_dict())
    step("statistics", lambda: rm.get_device_registry_statistics().as_dict())
    step("wrong_key", lambda: device(wrong.get_device("sdk-sas")))
    step(
        "read_only_create",
        lambda: device(read_only.create_device_with_sas("sdk-ro", PRIMARY, SECONDARY, "enabled")),
    )
    step("delete", lambda: rm.delete_device("sdk-sas"))
    step("delete_again", lambda: rm.delete_device("sdk-sas"))
    step("get_deleted", lambda: device(rm.get_device("sdk-sas")))
    print(json.dumps(obs, default=str))
    return 1 if obs["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
