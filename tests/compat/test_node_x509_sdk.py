"""The Node DPS device SDK over HTTP with X.509 attestation against a real ``provisiond serve``.

Every registration runs ``node/device-x509.js`` once: the official client
(azure-iot-provisioning-device[-http] 1.9.1 with azure-iot-security-x509's ``X509Security``)
registers one device that authenticates with a TLS client certificate (docs/x509.md) and
prints what ``register()`` resolved with, or how the server refused it. Certificates are made by
``tests/support/pki.py`` and written under the test's ``tmp_path``; enrollments are written through
the DPS service API, hubs are linked and CAs added with the operator CLI. Every test uses
ids, hub and CA names of its own because the server is shared by the whole session.
The tests follow DPS's X.509 device authentication and its ``registrationState.x509`` result
(docs/x509.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.compat.support import add_ca, dps_env, link_hub, run_node, service_request, unique_id
from tests.support.pki import Issued, issue
from tests.support.server import ServerProcess

pytestmark = pytest.mark.compat

SCRIPT = "device-x509.js"


# --- running the device client -------------------------------------------------------------------


def run_device(
    server: ServerProcess, registration_id: str, cert_file: Path, key_file: Path
) -> tuple[int, dict[str, Any]]:
    """One ``register()`` through device-x509.js: its exit status and the JSON line it printed."""
    extra = {
        **dps_env(server),
        "REGISTRATION_ID": registration_id,
        "DEVICE_CERT_FILE": str(cert_file),
        "DEVICE_KEY_FILE": str(key_file),
    }
    proc = run_node(SCRIPT, server.ca, **extra)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode in (0, 2) and lines, (
        f"device-x509.js failed unexpectedly (exit {proc.returncode})\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
        f"server log (tail):\n{server_log_tail(server)}"
    )
    return proc.returncode, json.loads(lines[-1])


def register(server: ServerProcess, registration_id: str, cert_file: Path, key_file: Path) -> dict[str, Any]:
    """``register()`` resolved: its result (the registrationState)."""
    code, out = run_device(server, registration_id, cert_file, key_file)
    assert code == 0 and out.get("registered") is True, (
        f"register() was refused: {out}\nserver log (tail):\n{server_log_tail(server)}"
    )
    result = out["result"]
    assert isinstance(result, dict), out
    return result


def refuse(server: ServerProcess, registration_id: str, cert_file: Path, key_file: Path) -> dict[str, Any]:
    """``register()`` rejected with a server answer: the error name, HTTP status, body and result."""
    code, out = run_device(server, registration_id, cert_file, key_file)
    assert code == 2 and out.get("refused") is True, f"register() was not refused: {out}"
    return out


def server_log_tail(server: ServerProcess, lines: int = 40) -> str:
    try:
        return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {server.log}: {exc})"


# --- certificates and enrollments ----------------------------------------------------------------


def thumbprints(cert: Issued) -> tuple[str, str]:
    """(SHA-1, SHA-256) of the certificate's DER, upper-case hex as DPS writes them."""
    der = cert.cert.public_bytes(Encoding.DER)
    return (
        hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        hashlib.sha256(der).hexdigest().upper(),
    )


def assert_describes(info: Any, cert: Issued) -> None:
    """An X509CertificateInfo (DPS service API 2021-10-01) of exactly ``cert``."""
    assert isinstance(info, dict), info
    sha1, sha256 = thumbprints(cert)
    assert info["subjectName"] == f"CN={common_name(cert)}", info
    assert info["sha256Thumbprint"] == sha256, info
    assert info["sha1Thumbprint"] == sha1, info


def assert_assigned(result: dict[str, Any], registration_id: str, hub: str, device_id: str) -> dict[str, Any]:
    """A final ``assigned`` registrationState naming this device and hub; returns its ``x509``."""
    assert result["registrationId"] == registration_id, result
    assert result["status"] == "assigned", result
    assert result["assignedHub"] == hub, result
    assert result["deviceId"] == device_id, result
    assert result["substatus"] == "initialAssignment", result
    assert isinstance(result["etag"], str) and result["etag"], result
    assert "errorCode" not in result, result
    assert "symmetricKey" not in result and "tpm" not in result, result
    x509 = result.get("x509")
    assert isinstance(x509, dict), f"an X.509 registration reports registrationState.x509: {result}"
    return x509


def put_x509_enrollment(
    server: ServerProcess, registration_id: str, device: Issued, **fields: Any
) -> dict[str, Any]:
    """PUT /enrollments/{id}: an individual X.509 enrollment holding ``device`` as primary certificate."""
    body = {
        "registrationId": registration_id,
        "attestation": {
            "type": "x509",
            "x509": {"clientCertificates": {"primary": {"certificate": device.pem}}},
        },
        **fields,
    }
    r = service_request(server, "PUT", f"/enrollments/{registration_id}", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def put_x509_group(
    server: ServerProcess, group_id: str, x509: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """PUT /enrollmentGroups/{id}: an X.509 enrollment group with the given ``attestation.x509``."""
    body = {"enrollmentGroupId": group_id, "attestation": {"type": "x509", "x509": x509}, **fields}
    r = service_request(server, "PUT", f"/enrollmentGroups/{group_id}", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def common_name(cert: Issued) -> str:
    return str(cert.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def ca_chain() -> tuple[Issued, Issued]:
    """A fresh root CA and an intermediate CA it signed (unique names)."""
    root = issue(unique_id("x509-root-ca"), ca=True)
    intermediate = issue(unique_id("x509-intermediate-ca"), root, ca=True)
    return root, intermediate


def anchor_group(server: ServerProcess, tmp_path: Path, root: Issued, how: str, hub: str) -> str:
    """An enrollment group on ``hub`` trusting ``root``: by ``caReferences`` (the root added with
    ``dps ca add``) or by ``signingCertificates``; returns the group id."""
    if how == "caReferences":
        root_file = tmp_path / "root-ca.pem"
        root_file.write_text(root.pem)
        x509: dict[str, Any] = {"caReferences": {"primary": add_ca(server, root_file, "node-x509-ca")}}
    else:
        x509 = {"signingCertificates": {"primary": {"certificate": root.pem}}}
    group_id = unique_id("node-x509-group")
    put_x509_group(server, group_id, x509, iotHubs=[hub])
    return group_id


# --- 1. individual enrollments -------------------------------------------------------------------


@pytest.mark.parametrize("with_device_id", [True, False], ids=["enrollment-deviceId", "no-deviceId"])
def test_self_signed_device_of_an_individual_enrollment_is_assigned_with_its_certificate_info(
    server: ServerProcess, tmp_path: Path, with_device_id: bool
) -> None:
    """An individual X.509 enrollment holding a self-signed device certificate (CN = registration id,
    no subjectAltName): the device presenting exactly that certificate is ``assigned`` on the
    enrollment's hub; deviceId is the enrollment's deviceId when set, else the registration id;
    registrationState.x509.certificateInfo describes the device certificate (subject, thumbprints)
    and names no group or signing certificate."""
    link_hub(server, "hub-other")  # a linked hub the enrollment does not name
    hub = link_hub(server)
    registration_id = unique_id("node-x509-ind")
    device_id = unique_id("device") if with_device_id else None
    device = issue(registration_id)
    cert_file, key_file = device.write(tmp_path, "device")
    fields: dict[str, Any] = {"iotHubs": [hub]}
    if device_id is not None:
        fields["deviceId"] = device_id
    put_x509_enrollment(server, registration_id, device, **fields)

    result = register(server, registration_id, cert_file, key_file)

    x509 = assert_assigned(result, registration_id, hub, device_id or registration_id)
    assert_describes(x509.get("certificateInfo"), device)
    assert x509["certificateInfo"]["issuerName"] == f"CN={registration_id}", "self-signed"
    assert "enrollmentGroupId" not in x509, x509
    assert "signingCertificateInfo" not in x509, x509
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 200, r.text
    assert (r.json()["assignedHub"], r.json()["deviceId"]) == (hub, device_id or registration_id)


# --- 2. enrollment groups ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["caReferences", "signingCertificates"])
def test_device_chaining_through_an_intermediate_to_a_groups_root_is_assigned_by_the_group(
    server: ServerProcess, tmp_path: Path, how: str
) -> None:
    """An X.509 enrollment group anchored on a root CA (referenced by name in caReferences.primary
    after ``dps ca add``, or held in signingCertificates.primary); the device certificate is issued
    by an intermediate CA and the device presents leaf + intermediate: it is ``assigned`` on the
    group's hub with deviceId = registration id, and registrationState.x509 names the group
    (enrollmentGroupId), describes the device certificate (certificateInfo) and the group's
    signing certificate, the root (signingCertificateInfo)."""
    link_hub(server, "hub-other")
    hub = link_hub(server)
    root, intermediate = ca_chain()
    group_id = anchor_group(server, tmp_path, root, how, hub)
    registration_id = unique_id("node-x509-member")
    device = issue(registration_id, intermediate)
    cert_file, key_file = device.write(tmp_path, "device", intermediate)

    result = register(server, registration_id, cert_file, key_file)

    x509 = assert_assigned(result, registration_id, hub, registration_id)
    assert x509.get("enrollmentGroupId") == group_id, x509
    assert_describes(x509.get("certificateInfo"), device)
    assert x509["certificateInfo"]["issuerName"] == f"CN={common_name(intermediate)}", x509
    signing = x509.get("signingCertificateInfo")
    assert isinstance(signing, dict), f"a group registration reports signingCertificateInfo: {x509}"
    assert_describes(signing, root)
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 200, r.text
    assert (r.json()["assignedHub"], r.json()["deviceId"]) == (hub, registration_id)


# --- 3. refusals through the SDK -----------------------------------------------------------------


@pytest.mark.parametrize("enrolled_by", ["individual", "group"])
def test_certificate_whose_common_name_is_not_the_registration_id_is_refused_with_401(
    server: ServerProcess, tmp_path: Path, enrolled_by: str
) -> None:
    """A device registering as one id with a certificate whose CN is another id is refused with 401
    (register() rejects with UnauthorizedError, a 401xxx errorCode), even when the certificate is
    otherwise good: the exact certificate of the registration id's individual enrollment, or a
    leaf chaining to a group's CA. No registration state is left behind."""
    hub = link_hub(server)
    registration_id = unique_id("node-x509-cn")
    other_id = unique_id("node-x509-other")
    if enrolled_by == "individual":
        device = issue(other_id)
        put_x509_enrollment(server, registration_id, device, iotHubs=[hub])
        cert_file, key_file = device.write(tmp_path, "device")
    else:
        root, intermediate = ca_chain()
        anchor_group(server, tmp_path, root, "caReferences", hub)
        device = issue(other_id, intermediate)
        cert_file, key_file = device.write(tmp_path, "device", intermediate)

    refusal = refuse(server, registration_id, cert_file, key_file)

    assert refusal["error"] == "UnauthorizedError", refusal
    assert refusal["httpStatus"] == 401, refusal
    body = refusal["body"]
    assert isinstance(body, dict), refusal
    code = body.get("errorCode")
    assert isinstance(code, int) and 401000 <= code <= 401999, refusal
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 404, "a refused device leaves no registration state"
    r = service_request(server, "GET", f"/registrations/{other_id}")
    assert r.status_code == 404, "nor one for the id its certificate names"
