"""Register ONE device with the official Python DPS device SDK (azure-iot-device 2.14.0, MQTT).

Run with the compat interpreter (``.venv-compat/bin/python``), never the server's::

    device_mqtt.py --port PORT --registration-id ID (--key KEY | --cert-file PEM --key-file KEY)
                   [--websockets] [--payload JSON] [--id-scope SCOPE]

The id scope defaults to ``ID_SCOPE`` and the trusted CA to the file ``TEST_CA_PEM`` (both from the
environment). ``ProvisioningDeviceClient`` is built with ``create_from_symmetric_key`` (``--key``) or
``create_from_x509_certificate(..., x509=X509(cert_file, key_file))``, with ``websockets=True`` when
asked, and ``register()`` is called once.

The SDK always dials port 8883 (443 with websockets; no option changes it), so this process
sends it to ``--port`` instead with ``use_ports`` of examples/provisiond_sdk.py (the helper the
docs ship): the server's MQTT port, or its HTTPS port for MQTT over WebSocket. Every dial is
recorded in ``dials``.

Prints ONE JSON line on stdout; exit status:
  0  register() returned: {"status", "operation_id", "device_id", "assigned_hub", "sub_status",
     "created_date_time", "last_update_date_time", "etag", "response_payload", "dials"}
  2  register() raised:   {"error": <exception type name>, "error_module", "message",
     "causes": [{"type", "message"}, …] (the __cause__/__context__ chain), "dials"}
  1  anything else (bad arguments, crash before register()): {"error", "message"}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

# The shipped helper (examples/provisiond_sdk.py, documented in docs/quickstart.md) redirects the
# SDK's fixed ports and records every dial; this script runs from tests/compat/python, so the
# repository root is put on the path to import it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from examples.provisiond_sdk import dials as DIALS
from examples.provisiond_sdk import use_ports


def describe(exc: BaseException) -> dict[str, Any]:
    causes = []
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        causes.append({"type": type(current).__name__, "message": str(current)})
        current = current.__cause__ or current.__context__
    return {
        "error": type(exc).__name__,
        "error_module": type(exc).__module__,
        "message": str(exc),
        "causes": causes,
        "dials": DIALS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True, help="the port paho really dials")
    parser.add_argument("--registration-id", required=True)
    parser.add_argument("--id-scope", default=os.environ.get("ID_SCOPE"))
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--key", help="device symmetric key (base64)")
    parser.add_argument("--cert-file", help="PEM: the device certificate, then any intermediates")
    parser.add_argument("--key-file", help="PEM: the device private key")
    parser.add_argument("--websockets", action="store_true", help="MQTT over WebSocket")
    parser.add_argument("--payload", help="JSON for client.provisioning_payload")
    args = parser.parse_args()
    if not args.id_scope:
        parser.error("--id-scope or ID_SCOPE is required")
    if bool(args.key) == bool(args.cert_file and args.key_file):
        parser.error("give either --key, or --cert-file and --key-file")
    ca_file = os.environ.get("TEST_CA_PEM")
    if not ca_file:
        parser.error("TEST_CA_PEM must name the test CA certificate (PEM file)")
    with open(ca_file, encoding="ascii") as f:
        ca_pem = f.read()

    # --port is the port really dialled: the server's MQTT port, or its HTTPS port for websockets.
    use_ports(mqtt_port=args.port, https_port=args.port)
    from azure.iot.device import X509, ProvisioningDeviceClient

    common: dict[str, Any] = {
        "provisioning_host": args.host,
        "registration_id": args.registration_id,
        "id_scope": args.id_scope,
        "server_verification_cert": ca_pem,  # PEM text, not a path
        "websockets": args.websockets,
    }
    if args.key:
        client = ProvisioningDeviceClient.create_from_symmetric_key(symmetric_key=args.key, **common)
    else:
        client = ProvisioningDeviceClient.create_from_x509_certificate(
            x509=X509(cert_file=args.cert_file, key_file=args.key_file), **common
        )
    if args.payload is not None:
        client.provisioning_payload = json.loads(args.payload)

    try:
        result = client.register()
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps(describe(exc)), flush=True)
        return 2
    state = result.registration_state
    print(
        json.dumps(
            {
                "status": result.status,
                "operation_id": result.operation_id,
                "device_id": state.device_id if state else None,
                "assigned_hub": state.assigned_hub if state else None,
                "sub_status": state.sub_status if state else None,
                "created_date_time": state.created_date_time if state else None,
                "last_update_date_time": state.last_update_date_time if state else None,
                "etag": state.etag if state else None,
                "response_payload": state.response_payload if state else None,
                "dials": DIALS,
            },
            default=str,
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as exc:  # argparse: bad arguments (exit 1, so 2 keeps meaning "register() raised")
        print(json.dumps({"error": "UsageError", "message": f"bad arguments (exit {exc.code})"}), flush=True)
        code = 0 if exc.code in (0, None) else 1
    except BaseException as exc:
        traceback.print_exc()
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
        code = 1
    sys.stdout.flush()
    # The SDK's paho thread and pipeline threads may linger after a refusal: do not wait for them.
    os._exit(code)
