"""The official Node TPM client (azure-iot-security-tpm 1.9.3 with azure-iot-provisioning-device[-http]
1.9.1) against a real ``provisiond serve``, its TPM a software one (swtpm).

``node-tpm/device-tpm.js`` drives the client; tss.js reaches swtpm through ``SimulatorAdapter``
(tests/support/tpm.py), which speaks the TPM simulator's TCP protocol that tss.js expects. The
Node packages live in their own directory, installed with ``npm ci --ignore-scripts`` (tss.js
pulls ffi-napi, which does not build on Node 20 and is not needed over TCP). Skipped locally
without swtpm; required in CI.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.registration_ids import id_key
from provisiond.domain.tpm_public import registration_id_of
from provisiond.store import tpm as tpm_repo
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from tests.compat.support import compat_env, dps_env, link_hub, service_request, unique_id
from tests.support.server import ServerProcess
from tests.support.tpm import SimulatorAdapter, SoftwareTpm, fake_ek, require_swtpm

pytestmark = pytest.mark.compat

NODE_TPM_DIR = Path(__file__).resolve().parent / "node-tpm"


@dataclass
class NodeTpmDevice:
    """One software TPM and the Node client that uses it, for one server."""

    server: ServerProcess
    adapter: SimulatorAdapter

    def run(self, **extra: str) -> tuple[int, dict[str, Any]]:
        if not (NODE_TPM_DIR / "node_modules").is_dir():
            raise RuntimeError(f"{NODE_TPM_DIR}/node_modules is missing: run `make test` first")
        env = compat_env(self.server.ca, **dps_env(self.server), TPM_PORT=str(self.adapter.port), **extra)
        proc = subprocess.run(
            ["node", "device-tpm.js"],
            cwd=NODE_TPM_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        assert lines, f"no output (exit {proc.returncode})\nstderr:\n{proc.stderr}"
        return proc.returncode, json.loads(lines[-1])

    def keys(self) -> tuple[str, str]:
        """The EK the client creates in its TPM and the registration id it derives from it."""
        code, out = self.run(ONLY_KEYS="1")
        assert code == 0, out
        return out["endorsementKey"], out["registrationId"]


@pytest.fixture
def node_tpm(server: ServerProcess, tmp_path: Path) -> Iterator[NodeTpmDevice]:
    require_swtpm()
    tpm = SoftwareTpm(tmp_path / "swtpm").start()
    adapter = SimulatorAdapter(tpm)
    try:
        yield NodeTpmDevice(server, adapter)
    finally:
        adapter.close()
        tpm.stop()


def enroll(server: ServerProcess, rid: str, ek: str, **fields: Any) -> None:
    body = {"registrationId": rid, "attestation": {"type": "tpm", "tpm": {"endorsementKey": ek}}, **fields}
    r = service_request(server, "PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200, r.text


def stored_hub_key(server: ServerProcess, rid: str) -> bytes:
    """The device's hub key as the server sealed it (opened with the server's own outer key)."""

    async def read() -> bytes:
        url = f"sqlite+aiosqlite:///{server.data_dir / 'provisiond.db'}"
        db = Database(url, pool_size=1, keyring=Keyring.load(server.data_dir / "secrets.key"))
        try:
            async with db.read() as conn:
                keys = await tpm_repo.get_keys(conn, id_key(rid))
        finally:
            await db.dispose()
        assert keys is not None and keys.hub_key is not None
        return keys.hub_key

    return asyncio.run(read())


def test_the_node_tpm_client_registers_under_its_derived_id_and_signs_with_the_hub_key(
    server: ServerProcess, node_tpm: NodeTpmDevice
) -> None:
    ek, rid = node_tpm.keys()
    assert rid == registration_id_of(ek)  # the SDK's derivation is ours
    hub = link_hub(server, "nodetpm")
    enroll(server, rid, ek, iotHubs=[hub], deviceId=f"node-tpm-{rid[:6]}")
    code, out = node_tpm.run(SIGN="hub token")
    assert code == 0 and out["registered"], out
    result = out["result"]["registrationState"]  # the TPM flow resolves with the whole operation
    assert (result["status"], result["assignedHub"], result["deviceId"]) == (
        "assigned",
        hub,
        f"node-tpm-{rid[:6]}",
    )
    # The SDK imported the hub key into its TPM: its signature is the server's key's HMAC.
    expected = hmac.new(stored_hub_key(server, rid), b"hub token", hashlib.sha256).digest()
    assert base64.b64decode(out["signature"]) == expected


def test_the_node_tpm_client_with_an_explicit_registration_id(
    server: ServerProcess, node_tpm: NodeTpmDevice
) -> None:
    ek, _ = node_tpm.keys()
    rid = unique_id("node-tpm")
    enroll(server, rid, ek, iotHubs=[link_hub(server, "nodetpm")])
    code, out = node_tpm.run(REGISTRATION_ID=rid)
    assert code == 0 and out["result"]["registrationState"]["status"] == "assigned", out
    assert out["registrationId"] == rid


def test_the_node_tpm_client_is_refused_under_another_tpms_ek(
    server: ServerProcess, node_tpm: NodeTpmDevice
) -> None:
    rid = unique_id("node-tpm")
    enroll(server, rid, fake_ek())
    code, out = node_tpm.run(REGISTRATION_ID=rid)
    # 401 without a blob: the SDK reports that no challenge came.
    assert code == 2 and out["refused"] and out["error"] == "FormatError", out


def test_the_node_tpm_client_of_a_disabled_enrollment_ends_disabled(
    server: ServerProcess, node_tpm: NodeTpmDevice
) -> None:
    ek, _ = node_tpm.keys()
    rid = unique_id("node-tpm")
    enroll(server, rid, ek, provisioningStatus="disabled")
    code, out = node_tpm.run(REGISTRATION_ID=rid)
    assert code == 2 and out["refused"], out
    assert out["result"]["registrationState"]["status"] == "disabled", out
