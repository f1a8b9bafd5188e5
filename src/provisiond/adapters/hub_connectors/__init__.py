"""Hub connectors: how a linked hub learns the devices assigned to it.

Each implements the ``HubConnector`` port of ``services/hub_sync.py``; ``connector_for`` is the
factory the composition root (``wiring.py``) hands to the services. ``iothub`` speaks Azure IoT
Hub's registry REST API; ``mosquitto`` a Mosquitto broker's dynamic-security plugin.
"""

from __future__ import annotations

from provisiond.adapters.hub_connectors.iothub import IotHubConnector
from provisiond.adapters.hub_connectors.mosquitto import MosquittoConnector
from provisiond.domain.hub_identities import ConnectorKind, HubConnection
from provisiond.errors import InvalidInput
from provisiond.services.hub_sync import HubConnector

__all__ = ["IotHubConnector", "MosquittoConnector", "connector_for"]


def connector_for(connection: HubConnection) -> HubConnector:
    """The connector of a hub's connection; ``InvalidInput`` for a kind not built yet."""
    if connection.kind is ConnectorKind.IOTHUB:
        return IotHubConnector(connection)
    if connection.kind is ConnectorKind.MOSQUITTO:
        return MosquittoConnector(connection)
    raise InvalidInput(f"the {connection.kind.value!r} connector is not available in this version")
