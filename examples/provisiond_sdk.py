"""The official Azure Python SDKs against provisiond: the two things they cannot be told.

* **Ports** (``azure-iot-device``, ``ProvisioningDeviceClient``): the SDK always dials port 8883
  for MQTT and 443 for MQTT over WebSocket (``websockets=True``); no argument changes that. On the
  default ``provisiond`` ports, 8883 is right and nothing is needed. On other ports, call
  :func:`use_ports` once before ``register()``: it makes every MQTT connection this process opens
  dial ``mqtt_port`` instead of 8883 and ``https_port`` instead of 443.
* **The development CA** (``azure-iothub-provisioningserviceclient``): the service SDK has no
  argument for a CA file; :func:`service_client` sets it on the client's HTTP connection.
  (The device SDK takes the CA as ``server_verification_cert``, the PEM *text*.)

Import it from a script next to the ``examples`` folder (``from examples.provisiond_sdk import …``),
or copy the file: it depends only on the SDKs themselves. docs/quickstart.md shows both SDKs with it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dials", "service_client", "use_ports"]

#: Every MQTT connection made after :func:`use_ports`: ``{"host", "requested_port", "port",
#: "transport"}``, the port the SDK asked for and the one really dialled (for debugging).
dials: list[dict[str, Any]] = []

_redirects: dict[int, int] = {}


def use_ports(mqtt_port: int, https_port: int | None = None) -> None:
    """Make ``azure-iot-device`` dial ``mqtt_port`` where it dials 8883 (MQTT over TLS), and
    ``https_port`` where it dials 443 (MQTT over WebSocket, on provisiond's HTTPS port).

    The SDK hands the port to paho-mqtt's ``Client.connect``; this wraps that method, for this
    process only, so that the two fixed ports are replaced. Calling it again replaces the ports.
    """
    import paho.mqtt.client as paho

    _redirects.clear()
    _redirects[8883] = mqtt_port
    if https_port is not None:
        _redirects[443] = https_port
    if getattr(paho.Client.connect, "_provisiond_ports", False):
        return
    original = paho.Client.connect

    def connect(self: Any, host: str, port: int = 1883, *args: Any, **kwargs: Any) -> Any:
        real = _redirects.get(port, port)
        dials.append(
            {
                "host": host,
                "requested_port": port,
                "port": real,
                "transport": getattr(self, "_transport", None),
            }
        )
        return original(self, host, real, *args, **kwargs)

    connect._provisiond_ports = True  # type: ignore[attr-defined]  # marks the wrapper: wrap once
    paho.Client.connect = connect  # type: ignore[method-assign,unused-ignore]  # paho typed where installed


def service_client(connection_string: str, ca_file: str) -> Any:
    """A ``ProvisioningServiceClient`` for the connection string ``provisiond init --json`` prints
    (``HostName=localhost:8443;…``: the SDK takes the port in ``HostName``), trusting the CA in
    ``ca_file`` (``caCertificate``) instead of the system's CAs.

    The SDK has no public setting for the CA; ``REQUESTS_CA_BUNDLE=ca.pem`` in the environment
    works too, but for every request of the process.
    """
    from provisioningserviceclient import ProvisioningServiceClient

    client = ProvisioningServiceClient.create_from_connection_string(connection_string)
    client._runtime_client.config.connection.verify = ca_file
    return client
