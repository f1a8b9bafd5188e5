"""The official Python IoT Hub service SDK (azure-iot-hub 2.7.0) against the IoT Hub contract double.

provisiond's hub connector is tested against ``tests/support/iothub_double.py`` because no IoT Hub
runs here. This module shows the double answers as IoT Hub does, by the measure of Microsoft's own
client: the SDK (``tests/compat/python/iothub_service_sdk.py``, run once per module with the
compat interpreter) creates, updates, reads, patches and deletes devices, and meets the errors
the reference documents (shared/reference/ISSUANCE_HUBS_EVENTS.md §2) the way it meets them at a
real hub: raised as ``HttpOperationError`` with the status and ``iothub-errorcode``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.support import compat_env
from tests.support.iothub_double import IotHubDouble, serve_iothub

pytestmark = pytest.mark.compat

REPO = Path(__file__).resolve().parents[2]
# HUB_SDK_PYTHON: another interpreter with tests/compat/requirements.txt installed (trying a new pin).
COMPAT_PYTHON = Path(os.environ.get("HUB_SDK_PYTHON", REPO / ".venv-compat" / "bin" / "python"))
SCRIPT = REPO / "tests" / "compat" / "python" / "iothub_service_sdk.py"
PRIMARY_B64 = "cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHA="


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], IotHubDouble]]:
    if not COMPAT_PYTHON.exists():
        pytest.fail(f"{COMPAT_PYTHON} is missing: `make test` builds it from tests/compat/requirements.txt")
    with serve_iothub(tmp_path_factory.mktemp("hub"), "placeholder") as hub:
        # The SDK reaches the hub at its HostName, so the double is named for where it listens.
        hub.host_name = hub.endpoint.removeprefix("https://")
        owner = hub.add_policy("iothubowner")
        wrong = hub.add_policy("other").replace(hub.policies["other"][0], PRIMARY_B64)
        read_only = hub.add_policy("registryRead", {"RegistryRead"})
        env = compat_env(
            str(hub.ca_path),
            HUB_CONNECTION_STRING=owner,
            HUB_WRONG_KEY_CONNECTION_STRING=wrong,
            HUB_READ_ONLY_CONNECTION_STRING=read_only,
        )
        proc = subprocess.run(
            [str(COMPAT_PYTHON), str(SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = proc.stdout.strip().splitlines()
        if not lines:
            pytest.fail(f"the SDK script printed nothing (exit {proc.returncode}):\n{proc.stderr}")
        obs = json.loads(lines[-1])
        assert obs["unexpected"] == [], proc.stderr
        yield obs, hub


def test_create_without_if_match_then_409_device_already_exists(
    run: tuple[dict[str, Any], IotHubDouble],
) -> None:
    obs, hub = run
    created = obs["create_sas"]
    assert created["type"] == "sas" and created["iotEdge"] is True and created["etag"]
    assert obs["create_again"]["status"] == 409
    assert obs["create_again"]["errorCode"] == "DeviceAlreadyExists"
    assert "ErrorCode:DeviceAlreadyExists;" in json.loads(obs["create_again"]["body"])["Message"]
    creates = [h for m, p, h, _b in hub.calls("PUT") if p == "/devices/sdk-sas"]
    assert "if-match" not in creates[0]


def test_update_with_the_etag_replaces_and_a_stale_etag_is_412(
    run: tuple[dict[str, Any], IotHubDouble],
) -> None:
    obs, _hub = run
    assert obs["update_with_etag"]["keys"] != obs["get"]["keys"]  # swapped keys took effect
    assert obs["update_with_etag"]["generationId"] == obs["get"]["generationId"]
    assert obs["update_with_stale_etag"]["status"] == 412
    assert obs["update_missing"]["status"] == 404
    assert obs["update_missing"]["errorCode"] == "DeviceNotFound"


def test_x509_and_certificate_authority_devices_round_trip(run: tuple[dict[str, Any], IotHubDouble]) -> None:
    obs, _hub = run
    assert obs["create_x509"]["type"] == "selfSigned"
    assert obs["create_x509"]["thumbprints"] == ["A" * 64, "B" * 64]
    assert obs["create_ca"]["type"] == "certificateAuthority" and obs["create_ca"]["iotEdge"] is True


def test_twin_patches_merge_and_null_removes(run: tuple[dict[str, Any], IotHubDouble]) -> None:
    obs, _hub = run
    assert obs["update_twin"]["tags"] == {"site": "eu"}
    assert obs["update_twin"]["properties"]["desired"]["interval"] == 30
    assert "interval" not in obs["update_twin_remove"]["properties"]["desired"]
    assert obs["get_twin"]["tags"] == {"site": "eu"}


def test_statistics_wrong_key_and_missing_rights(run: tuple[dict[str, Any], IotHubDouble]) -> None:
    obs, _hub = run
    assert obs["statistics"]["total_device_count"] == 3
    assert obs["wrong_key"]["status"] == 401
    assert obs["wrong_key"]["errorCode"] == "IotHubUnauthorizedAccess"
    assert obs["read_only_create"]["status"] == 401


def test_delete_is_204_then_404(run: tuple[dict[str, Any], IotHubDouble]) -> None:
    obs, hub = run
    assert obs["delete"] is None
    assert obs["delete_again"]["status"] == 404
    assert obs["get_deleted"]["status"] == 404
    deletes = [h for m, p, h, _b in hub.calls("DELETE")]
    assert deletes[0]["if-match"] == '"*"'
