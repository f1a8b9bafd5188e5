"""Certificate issuance against a real ``provisiond serve``, on SQLite and PostgreSQL.

Devices (symmetric key, X.509, a symmetric-key group member) register with a CSR over HTTPS and
over MQTT with raw requests (no SDK in reach sends ``csr``); each chain verifies up to the
policy's root, and the leaf with its key completes a mutual-TLS handshake with a real TLS server
that trusts only the policy's chain and checks the CRL the CLI wrote. After ``certificate
revoke``, the same server, given the new CRL, refuses it. The CRL served at ``/crl/{policy}.crl``
is never past its nextUpdate while the server runs (its window is shortened to 8.6 s here).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from provisiond.api.dps_device.mqtt.codec import Publish
from provisiond.domain.sas import build_sas, derive_device_key
from tests.compat.support import link_hub
from tests.support.databases import own_database
from tests.support.issuance import Csr, handshake, make_csr, tls_server_context, verify_chain
from tests.support.mqtt import device_connect
from tests.support.pki import Issued, issue
from tests.support.server import ServerProcess, start_server

PREVIEW = "2025-07-01-preview"
CRL_DAYS = 0.0001  # an 8.64 s nextUpdate window: the worker must re-sign every 4.3 s
GROUP_KEY = base64.b64encode(b"k" * 32).decode()
DEVICE_KEY = base64.b64encode(b"d" * 32).decode()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server of this module's own (its CRL window is short), on each engine."""
    tmp = tmp_path_factory.mktemp(f"issuance-{request.param}")
    pg = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with own_database(request.param, tmp, pg) as url:
        database = url.replace("postgresql+asyncpg://", "postgresql://") if pg else None
        proc = start_server(
            tmp / "data", database=database, env={"PROVISIOND_CRL_NEXT_UPDATE_DAYS": str(CRL_DAYS)}
        )
        yield proc
        proc.stop()


@pytest.fixture(scope="module")
def hub(server: ServerProcess) -> str:
    return link_hub(server, "certhub")


@pytest.fixture(scope="module")
def policy(server: ServerProcess) -> dict[str, Any]:
    name = uid("fleet")
    out = server.cli("dps", "credential-policy", "create", name, "--validity-days", "7", "--json")
    created: dict[str, Any] = json.loads(out.stdout)
    assert (created["name"], created["validityDays"]) == (name, 7)
    assert "PRIVATE" not in out.stdout + out.stderr
    return created


def service(server: ServerProcess, method: str, path: str, body: Any = None) -> httpx.Response:
    token = server.service_sas()
    with server.http() as client:
        return client.request(
            method, path, params={"api-version": PREVIEW}, json=body, headers={"Authorization": token}
        )


class Device:
    """A device of one attestation kind, with a fresh key pair for its operational certificate."""

    def __init__(
        self, server: ServerProcess, rid: str, *, key: str | None = None, cert: Issued | None = None
    ) -> None:
        self.server, self.rid, self.key, self.cert = server, rid, key, cert
        self.csr: Csr = make_csr(rid)

    def files(self, tmp: Path) -> tuple[str, str] | None:
        if self.cert is None:
            return None
        cert, key = self.cert.write(tmp, f"onboard-{self.rid}")
        return str(cert), str(key)

    def register_https(self, tmp: Path) -> dict[str, Any]:
        context = ssl.create_default_context(cafile=self.server.ca)
        if (files := self.files(tmp)) is not None:
            context.load_cert_chain(*files)
        headers = {}
        if self.key:
            sr = f"{self.server.id_scope}/registrations/{self.rid}"
            headers["Authorization"] = build_sas(self.key, sr, int(time.time()) + 600, "registration")
        base = f"/{self.server.id_scope}/registrations/{self.rid}"
        with self.server.http(context) as client:
            r = client.put(
                f"{base}/register",
                params={"api-version": PREVIEW},
                json={"registrationId": self.rid, "csr": self.csr.b64},
                headers=headers,
            )
            assert r.status_code == 202, r.text
            for _ in range(30):
                time.sleep(int(r.headers.get("retry-after", "1")))
                r = client.get(
                    f"{base}/operations/{r.json()['operationId']}",
                    params={"api-version": PREVIEW},
                    headers=headers,
                )
                if r.status_code == 200:
                    result: dict[str, Any] = r.json()
                    return result
        raise AssertionError("the registration never finished")

    async def register_mqtt(
        self, tmp: Path, body: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Register over MQTT (the username names the preview api-version); (status, answer)."""
        user = (
            f"{self.server.id_scope}/registrations/{self.rid}/api-version={PREVIEW}&ClientVersion=raw%2F1.0"
        )
        client, connack = await device_connect(
            self.server.mqtt_port, self.server.ca, self.server.id_scope, self.rid, self.key,
            username=user, cert=self.files(tmp),
        )  # fmt: skip
        assert connack.return_code == 0
        try:
            payload = json.dumps(body if body is not None else {"csr": self.csr.b64}).encode()
            answer = await client.request("$dps/registrations/PUT/iotdps-register/?$rid=1", payload)
            for rid in range(2, 32):
                status = answer.topic.split("/")[3]
                if status != "202":
                    return status, json.loads(answer.payload)
                await asyncio.sleep(1)
                op = json.loads(answer.payload)["operationId"]
                answer = await client.request(
                    f"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={op}", b""
                )
                assert isinstance(answer, Publish)
        finally:
            await client.close()
        raise AssertionError("the registration never finished")


@pytest.fixture(scope="module")
def devices(server: ServerProcess, hub: str, policy: dict[str, Any]) -> dict[str, Device]:
    """One device per attestation kind and transport, enrolled with the policy (preview API)."""
    name = policy["name"]
    group = uid("grp")
    body = {"enrollmentGroupId": group, "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": GROUP_KEY, "secondaryKey": GROUP_KEY}}, "iotHubs": [hub], "credentialPolicyName": name}  # fmt: skip
    assert service(server, "PUT", f"/enrollmentGroups/{group}", body).status_code == 200
    out: dict[str, Device] = {}
    for transport in ("https", "mqtt"):
        rid = uid(f"sym-{transport}")
        body = {"registrationId": rid, "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": DEVICE_KEY, "secondaryKey": DEVICE_KEY}}, "iotHubs": [hub], "credentialPolicyName": name}  # fmt: skip
        assert service(server, "PUT", f"/enrollments/{rid}", body).status_code == 200
        out[f"symmetric-{transport}"] = Device(server, rid, key=DEVICE_KEY)
        rid = uid(f"x509-{transport}")
        onboarding = issue(rid)
        x509_att = {
            "type": "x509",
            "x509": {"clientCertificates": {"primary": {"certificate": onboarding.pem}}},
        }
        body = {
            "registrationId": rid,
            "attestation": x509_att,
            "iotHubs": [hub],
            "credentialPolicyName": name,
        }
        assert service(server, "PUT", f"/enrollments/{rid}", body).status_code == 200
        out[f"x509-{transport}"] = Device(server, rid, cert=onboarding)
        rid = uid(f"member-{transport}")
        out[f"group-{transport}"] = Device(server, rid, key=derive_device_key(GROUP_KEY, rid))
    return out


def write_chain_and_crl(server: ServerProcess, name: str, tmp: Path) -> tuple[Path, Path]:
    chain, crl = tmp / "chain.pem", tmp / "crl.pem"
    server.cli("dps", "credential-policy", "chain", name, "--out", str(chain))
    server.cli("dps", "credential-policy", "crl", name, "--out", str(crl))
    return chain, crl


@pytest.mark.parametrize("kind", ["symmetric", "x509", "group"])
@pytest.mark.parametrize("transport", ["https", "mqtt"])
async def test_a_device_gets_a_chain_to_the_policy_root_that_passes_mutual_tls_until_revoked(
    server: ServerProcess,
    policy: dict[str, Any],
    devices: dict[str, Device],
    kind: str,
    transport: str,
    tmp_path: Path,
) -> None:
    device = devices[f"{kind}-{transport}"]
    if transport == "https":
        result = device.register_https(tmp_path)
    else:
        status, result = await device.register_mqtt(tmp_path)
        assert status == "200", result
    assert result["status"] == "assigned", result
    chain = result["registrationState"]["issuedCertificateChain"]
    certs = verify_chain(chain, device.rid)
    assert certs[0].public_key() == device.csr.key.public_key()
    assert x509.load_pem_x509_certificates(policy["issuingChainPem"].encode()) == certs[1:]

    leaf, key = device.csr.write_identity(tmp_path, chain[0])
    chain_file, crl_file = write_chain_and_crl(server, policy["name"], tmp_path)
    assert handshake(tls_server_context(tmp_path, chain_file, crl_file), leaf, key) is None
    assert handshake(tls_server_context(tmp_path, chain_file, crl_file, whole_chain=False), leaf, key) is None

    out = server.cli("dps", "certificate", "revoke", "--registration", device.rid, "--json")
    revoked = json.loads(out.stdout)
    assert revoked["revoked"] == [f"{certs[0].serial_number:X}"]
    # Its enrollment (or group) is still enabled: the device could get a new certificate.
    assert f"warning: the enrollment of {device.rid} is enabled" in out.stderr
    _, crl_file = write_chain_and_crl(server, policy["name"], tmp_path)
    for whole_chain in (True, False):  # nginx's ssl_crl, Mosquitto's crlfile
        refused = handshake(
            tls_server_context(tmp_path, chain_file, crl_file, whole_chain=whole_chain), leaf, key
        )
        assert refused is not None and "revoked" in refused


def test_a_leaf_from_another_ca_fails_the_handshake_with_the_policy_chain(
    server: ServerProcess, policy: dict[str, Any], tmp_path: Path
) -> None:
    chain_file, crl_file = write_chain_and_crl(server, policy["name"], tmp_path)
    stranger = issue("stranger")
    cert, key = stranger.write(tmp_path, "stranger")
    assert handshake(tls_server_context(tmp_path, chain_file, crl_file), cert, key) is not None


def test_certificate_list_shows_what_was_issued_and_revoke_by_serial_reports_it(
    server: ServerProcess, devices: dict[str, Device], tmp_path: Path
) -> None:
    device = devices["symmetric-https"]
    device.csr = make_csr(device.rid)  # renewal: a new key, a new certificate
    result = device.register_https(tmp_path)
    serial = f"{verify_chain(result['registrationState']['issuedCertificateChain'], device.rid)[0].serial_number:X}"
    listed = json.loads(
        server.cli("dps", "certificate", "list", "--registration", device.rid, "--json").stdout
    )
    assert serial in [c["serialNumber"] for c in listed["certificates"]]
    assert all(c["registrationId"] == device.rid for c in listed["certificates"])
    out = json.loads(server.cli("dps", "certificate", "revoke", "--serial", serial, "--json").stdout)
    assert out == {"revoked": [serial]}
    again = server.cli("dps", "certificate", "revoke", "--serial", "00ABC", "--json", check=False)
    assert again.returncode == 1 and "error" in json.loads(again.stdout)


REFUSED = {
    "not base64": ("%%%", "not valid base64"),
    "other cn": (None, "must equal the registration id"),
    "ca rights": ("ca", "CA:TRUE"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_bad_csr_over_mqtt_is_answered_400_with_the_dps_error_body(
    server: ServerProcess, devices: dict[str, Device], case: str, tmp_path: Path
) -> None:
    device = devices["group-mqtt"]
    text, message = REFUSED[case]
    csr = make_csr(device.rid, ca=True).b64 if text == "ca" else (text or make_csr("someone-else").b64)
    status, answer = await device.register_mqtt(tmp_path, {"csr": csr})
    assert status == "400" and answer["errorCode"] == 400037 and message in answer["message"], answer
    assert answer["trackingId"] and answer["timestampUtc"]


def test_a_bad_csr_over_https_is_answered_400_with_the_dps_error_body(
    server: ServerProcess, devices: dict[str, Device]
) -> None:
    device = devices["symmetric-mqtt"]
    sr = f"{server.id_scope}/registrations/{device.rid}"
    with server.http() as client:
        r = client.put(
            f"/{sr}/register",
            params={"api-version": PREVIEW},
            json={"csr": make_csr("not-me").b64},
            headers={"Authorization": build_sas(DEVICE_KEY, sr, int(time.time()) + 600, "registration")},
        )
    assert (
        r.status_code == 400 and r.json()["errorCode"] == 400037 and r.headers["x-ms-error-code"] == "400037"
    )


def test_a_policy_with_a_crl_url_puts_the_distribution_point_in_its_leaves(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    name = uid("cdp")
    url = f"{server.base_url}/crl/{name}.crl"
    server.cli("dps", "credential-policy", "create", name, "--key-type", "ec-p256", "--crl-url", url)
    rid = uid("cdp-dev")
    body = {"registrationId": rid, "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": DEVICE_KEY, "secondaryKey": DEVICE_KEY}}, "iotHubs": [hub], "credentialPolicyName": name}  # fmt: skip
    assert service(server, "PUT", f"/enrollments/{rid}", body).status_code == 200
    result = Device(server, rid, key=DEVICE_KEY).register_https(tmp_path)
    leaf = verify_chain(result["registrationState"]["issuedCertificateChain"], rid)[0]
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier(url)]
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), trust_env=False) as anonymous:
        r = anonymous.get(url)  # what a broker does: no credentials
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"


def test_the_served_crl_is_never_past_its_next_update_while_the_server_runs(
    server: ServerProcess, policy: dict[str, Any]
) -> None:
    numbers = []
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), trust_env=False) as anonymous:
        deadline = time.monotonic() + 3 * CRL_DAYS * 86400  # three windows
        while time.monotonic() < deadline:
            r = anonymous.get(f"{server.base_url}/crl/{policy['name']}.crl")
            assert r.status_code == 200
            crl = x509.load_der_x509_crl(r.content)
            assert crl.next_update_utc is not None and crl.next_update_utc > datetime.now(UTC)
            numbers.append(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
            time.sleep(0.5)
    assert len(set(numbers)) >= 4, numbers  # re-signed at least every half window


def test_the_cli_imports_an_operators_intermediate_lists_and_deletes_policies(
    server: ServerProcess, tmp_path: Path
) -> None:
    root = issue("operator root", ca=True, days=365)
    intermediate = issue("operator intermediate", root, ca=True, days=365)
    cert, key = intermediate.write(tmp_path, "intermediate", root)
    name = uid("own")
    out = server.cli(
        "dps", "credential-policy", "create", name, "--ca-cert", str(cert), "--ca-key", str(key), "--json"
    )
    created = json.loads(out.stdout)
    assert created["issuingChainPem"] == intermediate.pem + root.pem and created["keyType"] == "ec-p256"
    assert "PRIVATE" not in out.stdout + out.stderr
    half = server.cli(
        "dps", "credential-policy", "create", uid("own"), "--ca-cert", str(cert), "--json", check=False
    )
    assert half.returncode == 1 and "go together" in json.loads(half.stdout)["error"]
    listed = json.loads(server.cli("dps", "credential-policy", "list", "--json").stdout)["policies"]
    assert name in [p["name"] for p in listed] and "PRIVATE" not in json.dumps(listed)
    server.cli("dps", "credential-policy", "delete", name)
    gone = server.cli(
        "dps", "credential-policy", "chain", name, "--out", str(tmp_path / "x.pem"), check=False
    )
    assert gone.returncode == 1 and "no credential policy" in gone.stderr
    both = server.cli("dps", "certificate", "revoke", "--serial", "1", "--registration", "r", check=False)
    assert both.returncode == 2
