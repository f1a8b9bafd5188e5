"""Smoke test of the official Node zero-touch client (@googleapis/androiddeviceprovisioning 16.0.0).

``tests/compat/node/zerotouch.js`` creates a customer, submits a claimAsync (one item invalid) and
loops on operations.get until done, then provokes two refusals; it prints one JSON line.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tests.compat.support import node_json, run_node
from tests.support.server import ServerProcess

pytestmark = pytest.mark.compat

S = "SINGLE_DEVICE_STATUS_"


@pytest.fixture(scope="module")
def obs(server: ServerProcess) -> dict[str, Any]:
    partner = json.loads(server.cli("partner", "create", "Compat Node reseller", "--json").stdout)
    prefix = f"35{random.randrange(10**6):06d}"
    proc = run_node(
        "zerotouch.js",
        server.ca,
        prefix,
        DPS_HTTPS_PORT=str(server.port),
        ZT_TOKEN=partner["token"],
        ZT_PARTNER=partner["partnerId"],
    )
    record: dict[str, Any] = node_json(proc)
    record["partnerId"] = partner["partnerId"]
    return record


def test_the_node_client_creates_and_lists_a_customer(obs: dict[str, Any]) -> None:
    customer = obs["customer"]
    assert (
        customer["companyId"].isdigit()
        and customer["name"] == f"partners/{obs['partnerId']}/customers/{customer['companyId']}"
    )
    assert obs["listed"]["customers"] == [customer] and obs["listed"]["totalSize"] == 1


def test_the_node_client_polls_claim_async_to_done_with_results_in_order(obs: dict[str, Any]) -> None:
    done = obs["done"]
    assert done["done"] is True and done["name"] == obs["started"]["name"]
    statuses = done["response"]["perDeviceStatus"]
    assert [s["claim"] for s in statuses] == obs["claimsSent"]
    assert [s["result"]["status"] for s in statuses] == [S + "SUCCESS"] * 3 + [
        S + "INVALID_DEVICE_IDENTIFIER"
    ]
    assert done["response"]["successCount"] == 3 and done["metadata"]["devicesCount"] == 4


def test_the_node_client_surfaces_errors_as_gaxios_errors_with_the_message(obs: dict[str, Any]) -> None:
    assert obs["unknownOperation"]["status"] == 404 and obs["unknownOperation"]["type"] == "GaxiosError"
    assert (
        obs["badToken"]["status"] == 401
        and "invalid authentication credentials" in obs["badToken"]["message"]
    )
