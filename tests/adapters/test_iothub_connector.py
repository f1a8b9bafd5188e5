"""The IoT Hub connector against the contract double of the registry API (tests/support/iothub_double.py):
the calls it makes (SAS, api-version, If-Match, bodies) and how it reports what the hub answers."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisiond.adapters.hub_connectors import IotHubConnector, connector_for
from provisiond.domain.hub_identities import (
    ConnectorKind,
    HubAuthentication,
    HubAuthKind,
    HubConnection,
    HubIdentity,
    HubRefused,
    HubThrottled,
    TwinPatch,
)
from provisiond.errors import InvalidInput
from tests.support.iothub_double import IotHubDouble, serve_iothub
from tests.support.pki import issue

HUB = "contoso-hub.azure-devices.net"
KEY = "cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHA="


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[IotHubDouble]:
    with serve_iothub(tmp_path, HUB) as double:
        yield double


def connector(hub: IotHubDouble, secret: str | None = None, ca_pem: str | None = None) -> IotHubConnector:
    # The policy's HostName in upper case: the token's sr must still be the lower-case host name.
    secret = secret or hub.add_policy("provisioning").replace(HUB, HUB.upper())
    return IotHubConnector(
        HubConnection(HUB, ConnectorKind.IOTHUB, secret, hub.endpoint, ca_pem or hub.ca_pem)
    )


def sas_device(device_id: str = "dev-1", edge: bool = False) -> HubIdentity:
    return HubIdentity(device_id, HubAuthentication(HubAuthKind.SAS, KEY, KEY), edge)


def test_create_then_update_sends_the_whole_device_without_then_with_if_match(hub: IotHubDouble) -> None:
    hub_connector = connector(hub)
    asyncio.run(hub_connector.put_identity(sas_device(edge=True)))
    asyncio.run(hub_connector.put_identity(sas_device()))
    puts = hub.calls("PUT")
    assert [h.get("if-match") for _m, _p, h, _b in puts] == [None, None, '"*"']
    _method, path, headers, body = puts[0]
    assert path == "/devices/dev-1"
    assert body == {
        "deviceId": "dev-1",
        "status": "enabled",
        "authentication": {"type": "sas", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        "capabilities": {"iotEdge": True},
    }
    assert headers["authorization"].startswith(f"SharedAccessSignature sr={HUB}&sig=")
    assert headers["authorization"].endswith("&skn=provisioning")
    assert headers["content-type"] == "application/json; charset=utf-8" and headers["request-id"]
    assert hub.devices["dev-1"]["capabilities"] == {"iotEdge": False}  # the update replaced it


def test_twins_are_patched_with_if_match_star_and_read_back_without_metadata(hub: IotHubDouble) -> None:
    hub_connector = connector(hub)
    asyncio.run(hub_connector.put_identity(sas_device()))
    asyncio.run(hub_connector.patch_twin("dev-1", TwinPatch({"site": "eu"}, {"interval": 30})))
    (_m, _p, headers, body) = hub.calls("PATCH")[0]
    assert headers["if-match"] == '"*"'
    assert body == {"tags": {"site": "eu"}, "properties": {"desired": {"interval": 30}}}
    assert asyncio.run(hub_connector.read_twin("dev-1")) == TwinPatch({"site": "eu"}, {"interval": 30})
    assert asyncio.run(hub_connector.read_twin("nobody")) is None


def test_delete_is_forced_and_a_missing_device_is_no_error(hub: IotHubDouble) -> None:
    hub_connector = connector(hub)
    asyncio.run(hub_connector.put_identity(sas_device()))
    assert asyncio.run(hub_connector.delete_identity("dev-1")) is True
    assert asyncio.run(hub_connector.delete_identity("dev-1")) is False
    assert hub.calls("DELETE")[0][2]["if-match"] == '"*"'


def test_a_refusal_carries_the_hubs_body_and_a_429_its_retry_after(hub: IotHubDouble) -> None:
    hub_connector = connector(hub)
    hub.refuse(400, "ArgumentInvalid", "bad thumbprint")
    with pytest.raises(HubRefused) as refused:
        asyncio.run(hub_connector.put_identity(sas_device()))
    assert refused.value.status == 400
    assert refused.value.message.startswith('{"Message": "ErrorCode:ArgumentInvalid;bad thumbprint"')
    hub.throttle(1, retry_after="7")
    with pytest.raises(HubThrottled) as throttled:
        asyncio.run(hub_connector.put_identity(sas_device()))
    assert throttled.value.retry_after == 7.0 and "ThrottlingException" in throttled.value.message


def test_a_wrong_key_is_401_and_the_check_call_proves_a_good_one(hub: IotHubDouble) -> None:
    assert "0 device(s)" in asyncio.run(connector(hub).check())
    assert [c[0] for c in hub.calls()] == ["DELETE", "GET", "GET"]
    assert hub.calls("GET")[1][1] == "/statistics/devices"
    forged = f"HostName={HUB};SharedAccessKeyName=provisioning;SharedAccessKey={KEY}"
    with pytest.raises(HubRefused, match="IotHubUnauthorizedAccess") as refused:
        asyncio.run(connector(hub, forged).check())
    assert refused.value.status == 401


def test_the_check_call_proves_registry_write_and_service_connect_not_only_registry_read(
    hub: IotHubDouble,
) -> None:
    """A policy with only RegistryRead cannot provision: the check says so (review finding 9);
    one with RegistryWrite and ServiceConnect, what a linked hub needs (§2.2), passes."""
    read_only = hub.add_policy("reader", {"RegistryRead"})
    with pytest.raises(HubRefused, match="IotHubUnauthorizedAccess"):
        asyncio.run(connector(hub, read_only).check())
    enough = hub.add_policy("writer", {"RegistryWrite", "ServiceConnect"})
    assert "RegistryWrite and ServiceConnect accepted" in asyncio.run(connector(hub, enough).check())
    assert hub.devices == {}


def test_a_hub_whose_tls_chain_is_not_trusted_cannot_be_reached(hub: IotHubDouble) -> None:
    other_ca = issue("another CA", ca=True).pem
    with pytest.raises(HubRefused, match="could not be reached: ConnectError"):
        asyncio.run(connector(hub, ca_pem=other_ca).put_identity(sas_device()))
    assert hub.devices == {}


def test_the_factory_builds_iothub_and_refuses_what_it_cannot_serve(hub: IotHubDouble) -> None:
    secret = hub.add_policy("p")
    assert isinstance(connector_for(HubConnection(HUB, ConnectorKind.IOTHUB, secret)), IotHubConnector)
    with pytest.raises(InvalidInput, match="not available"):
        connector_for(HubConnection(HUB, ConnectorKind.NONE, ""))
    # A mosquitto connection whose secret is not an admin account (never echoed).
    with pytest.raises(InvalidInput, match="not an admin account") as refused:
        connector_for(HubConnection(HUB, ConnectorKind.MOSQUITTO, "s3cr3t", "mqtts://localhost:8883"))
    assert "s3cr3t" not in str(refused.value)


def test_the_tls_context_is_built_once_per_connector_not_per_request(hub: IotHubDouble) -> None:
    """Loading a trust store blocks for milliseconds: a connector keeps the context it built (here
    the default trust store, which does not trust the double's private CA: the calls are refused)."""
    secret = hub.add_policy("provisioning")
    hub_connector = IotHubConnector(HubConnection(HUB, ConnectorKind.IOTHUB, secret, hub.endpoint))
    with pytest.raises(HubRefused):
        asyncio.run(hub_connector.check())
    context = hub_connector._verify
    assert isinstance(context, ssl.SSLContext)
    with pytest.raises(HubRefused):
        asyncio.run(hub_connector.check())
    assert hub_connector._verify is context


def test_a_hub_that_trickles_its_answer_is_cut_off_at_the_call_deadline(hub: IotHubDouble) -> None:
    """Each byte arrives before the read timeout, so only an overall deadline ends the call (finding 5)."""
    secret = hub.add_policy("provisioning")
    slow = IotHubConnector(
        HubConnection(HUB, ConnectorKind.IOTHUB, secret, hub.endpoint, hub.ca_pem), deadline=1.0
    )
    hub.trickle(0.2)  # 64 bytes: ~13 s in all
    started = time.monotonic()
    with pytest.raises(HubRefused, match="did not answer within 1 s"):
        asyncio.run(slow.put_identity(sas_device()))
    assert time.monotonic() - started < 10  # far below the trickle's 13 s
