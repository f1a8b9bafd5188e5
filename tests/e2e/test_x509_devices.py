"""X.509 device attestation through real TLS handshakes against a real server.

Each device connects with its certificate (and intermediates) over TLS; the server's TLS front
accepts the chain and the application decides. Results are read with the device API's status
lookup, so no test waits for a Retry-After.
"""

from __future__ import annotations

import ssl
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.compat.support import link_hub, service_request
from tests.support.pki import Issued, issue
from tests.support.server import ServerProcess, start_server

API = {"api-version": "2019-03-31"}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Device:
    """A device that authenticates with a client certificate chain over a real TLS handshake."""

    def __init__(
        self, server: ServerProcess, registration_id: str, tmp: Path, cert: Issued | None, *chain: Issued
    ) -> None:
        self.server, self.registration_id = server, registration_id
        self.context = ssl.create_default_context(cafile=server.ca)
        if cert is not None:
            self.context.load_cert_chain(*cert.write(tmp, uid("device"), *chain))

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, verify=self.context, trust_env=False, timeout=30)

    def register(self, headers: dict[str, str] | None = None) -> httpx.Response:
        path = f"/{self.server.id_scope}/registrations/{self.registration_id}/register"
        with self._client() as client:
            return client.put(
                path, params=API, json={"registrationId": self.registration_id}, headers=headers
            )

    def state(self) -> dict[str, Any]:
        """The registration state, from the status lookup (a new TLS connection)."""
        with self._client() as client:
            r = client.post(
                f"/{self.server.id_scope}/registrations/{self.registration_id}", params=API, json={}
            )
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    root = issue("provisiond test root", ca=True)
    intermediate = issue("provisiond test intermediate", root, ca=True)
    return {"root": root, "intermediate": intermediate}


@pytest.fixture(scope="module")
def hub(server: ServerProcess) -> str:
    return link_hub(server, "x509hub")


@pytest.fixture(scope="module")
def ca_name(server: ServerProcess, pki: dict[str, Issued], tmp_path_factory: pytest.TempPathFactory) -> str:
    name = uid("root")
    path = tmp_path_factory.mktemp("ca") / "root.pem"
    path.write_text(pki["root"].pem)
    server.cli("dps", "ca", "add", str(path), "--name", name)
    return name


def enroll_individual(server: ServerProcess, rid: str, cert: Issued, hub: str, **fields: Any) -> None:
    body = {
        "registrationId": rid,
        "attestation": {
            "type": "x509",
            "x509": {"clientCertificates": {"primary": {"certificate": cert.pem}}},
        },
        "iotHubs": [hub],
        **fields,
    }
    r = service_request(server, "PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200, r.text


def enroll_group(
    server: ServerProcess, gid: str, hub: str, *, ca: str | None = None, signing: Issued | None = None
) -> None:
    x509: dict[str, Any] = (
        {"caReferences": {"primary": ca}}
        if ca
        else {"signingCertificates": {"primary": {"certificate": signing.pem if signing else ""}}}
    )
    body = {"enrollmentGroupId": gid, "attestation": {"type": "x509", "x509": x509}, "iotHubs": [hub]}
    r = service_request(server, "PUT", f"/enrollmentGroups/{gid}", json=body)
    assert r.status_code == 200, r.text


# -- devices that register -----------------------------------------------------------------------


def test_individual_self_signed_device_without_san_registers(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    rid = uid("x509-ind")
    cert = issue(rid)
    enroll_individual(server, rid, cert, hub, deviceId="dev-from-enrollment")
    device = Device(server, rid, tmp_path, cert)
    assert device.register().status_code == 202
    state = device.state()
    assert (state["status"], state["assignedHub"], state["deviceId"]) == (
        "assigned",
        hub,
        "dev-from-enrollment",
    )
    info = state["x509"]["certificateInfo"]
    assert info["subjectName"] == f"CN={rid}" and "enrollmentGroupId" not in state["x509"]


def test_group_member_through_an_intermediate_to_a_referenced_ca(
    server: ServerProcess, hub: str, pki: dict[str, Issued], ca_name: str, tmp_path: Path
) -> None:
    gid, rid = uid("x509-grp"), uid("x509-member")
    enroll_group(server, gid, hub, ca=ca_name)
    device = Device(server, rid, tmp_path, issue(rid, pki["intermediate"]), pki["intermediate"])
    assert device.register().status_code == 202, device.register().text
    state = device.state()
    assert (state["status"], state["deviceId"], state["assignedHub"]) == ("assigned", rid, hub)
    assert state["x509"]["enrollmentGroupId"] == gid
    assert state["x509"]["signingCertificateInfo"]["subjectName"] == "CN=provisiond test root"


def test_nearest_anchor_wins_among_groups(
    server: ServerProcess, pki: dict[str, Issued], ca_name: str, tmp_path: Path
) -> None:
    far_hub, near_hub = link_hub(server, "far"), link_hub(server, "near")
    own_intermediate = issue("nearest test intermediate", pki["root"], ca=True)
    enroll_group(server, uid("a-far"), far_hub, ca=ca_name)
    enroll_group(server, uid("z-near"), near_hub, signing=own_intermediate)
    rid = uid("x509-near")
    device = Device(server, rid, tmp_path, issue(rid, own_intermediate), own_intermediate)
    assert device.register().status_code == 202
    state = device.state()
    assert state["assignedHub"] == near_hub
    assert state["x509"]["signingCertificateInfo"]["subjectName"] == "CN=nearest test intermediate"


def test_a_device_without_certificate_still_uses_its_symmetric_key(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    """Requesting a client certificate must not break SAS devices (no certificate sent)."""
    import time

    from provisiond.domain.sas import build_sas
    from tests.compat.support import derive_device_key  # noqa: F401 - same helpers as the SDK tests

    rid = uid("sym")
    key = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}},
        "iotHubs": [hub],
    }
    assert service_request(server, "PUT", f"/enrollments/{rid}", json=body).status_code == 200
    token = build_sas(key, f"{server.id_scope}/registrations/{rid}", int(time.time()) + 600, "registration")
    device = Device(server, rid, tmp_path, None)
    assert device.register({"Authorization": token}).status_code == 202


# -- refusals, each with a real handshake --------------------------------------------------------


NO_MATCH = "matches no enrollment"


def refused(device: Device, reason: str, headers: dict[str, str] | None = None) -> None:
    """401 for the stated reason (so a refusal for another cause does not pass the test)."""
    r = device.register(headers)
    assert r.status_code == 401, r.text
    assert r.json()["errorCode"] == 401000 and reason in r.json()["message"], r.text


def test_certificate_whose_cn_is_not_the_registration_id(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    rid = uid("x509-cn")
    cert = issue("someone-else")
    enroll_individual(server, rid, cert, hub)
    refused(Device(server, rid, tmp_path, cert), "common name")


def test_expired_leaf(server: ServerProcess, hub: str, tmp_path: Path) -> None:
    rid = uid("x509-old")
    cert = issue(rid, expired=True)
    enroll_individual(server, rid, cert, hub)
    refused(Device(server, rid, tmp_path, cert), "not valid at this time")


def test_expired_intermediate(
    server: ServerProcess, hub: str, pki: dict[str, Issued], ca_name: str, tmp_path: Path
) -> None:
    enroll_group(server, uid("grp-old-int"), hub, ca=ca_name)
    old = issue("expired intermediate", pki["root"], ca=True, expired=True)
    rid = uid("x509-via-old")
    refused(Device(server, rid, tmp_path, issue(rid, old), old), NO_MATCH)


def test_intermediate_without_ca_true(
    server: ServerProcess, hub: str, pki: dict[str, Issued], ca_name: str, tmp_path: Path
) -> None:
    enroll_group(server, uid("grp-noca"), hub, ca=ca_name)
    not_a_ca = issue("not a ca", pki["root"], ca=False, client_auth=False)
    rid = uid("x509-via-leaf")
    refused(Device(server, rid, tmp_path, issue(rid, not_a_ca), not_a_ca), NO_MATCH)


def test_issuer_with_the_trusted_ca_name_but_another_key(
    server: ServerProcess, hub: str, pki: dict[str, Issued], ca_name: str, tmp_path: Path
) -> None:
    enroll_group(server, uid("grp-impostor"), hub, ca=ca_name)
    impostor = issue("provisiond test root", ca=True, key=ec.generate_private_key(ec.SECP256R1()))
    rid = uid("x509-impostor")
    refused(Device(server, rid, tmp_path, issue(rid, impostor)), NO_MATCH)


def test_chain_to_a_ca_the_group_does_not_reference(
    server: ServerProcess, hub: str, ca_name: str, tmp_path: Path
) -> None:
    other_root = issue("unreferenced root", ca=True)
    path = tmp_path / "other.pem"
    path.write_text(other_root.pem)
    server.cli(
        "dps", "ca", "add", str(path), "--name", uid("other")
    )  # known to the instance, not to the group
    enroll_group(server, uid("grp-ref"), hub, ca=ca_name)
    rid = uid("x509-other")
    refused(Device(server, rid, tmp_path, issue(rid, other_root)), NO_MATCH)


def test_proxy_header_from_an_address_that_is_not_a_configured_proxy(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    rid = uid("x509-forged")
    cert = issue(rid)
    enroll_individual(server, rid, cert, hub)
    xfcc = f'Hash=00;Cert="{urllib.parse.quote(cert.pem, safe="")}"'
    refused(Device(server, rid, tmp_path, None), "not a configured proxy", {"x-forwarded-client-cert": xfcc})


# -- behind a TLS-terminating proxy --------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that believes x-forwarded-client-cert from 127.0.0.1 (as behind Envoy)."""
    proc = start_server(tmp_path_factory.mktemp("proxied"), settings={"trusted_proxies": ["127.0.0.1/32"]})
    yield proc
    proc.stop()


def test_certificate_forwarded_by_a_configured_proxy_is_used(
    proxied: ServerProcess, pki: dict[str, Issued], tmp_path: Path
) -> None:
    hub = link_hub(proxied, "proxied")
    ca = tmp_path / "root.pem"
    ca.write_text(pki["root"].pem)
    proxied.cli("dps", "ca", "add", str(ca), "--name", "root")
    gid, rid = uid("grp-proxy"), uid("x509-proxied")
    enroll_group(proxied, gid, hub, ca="root")
    leaf = issue(rid, pki["intermediate"])
    xfcc = f'By=spiffe://proxy;Cert="{urllib.parse.quote(leaf.pem, safe="")}";Chain="{urllib.parse.quote(leaf.pem + pki["intermediate"].pem, safe="")}"'
    device = Device(proxied, rid, tmp_path, None)
    assert device.register({"x-forwarded-client-cert": xfcc}).status_code == 202
    with httpx.Client(base_url=proxied.base_url, verify=device.context, trust_env=False) as client:
        r = client.post(
            f"/{proxied.id_scope}/registrations/{rid}",
            params=API,
            json={},
            headers={"x-forwarded-client-cert": xfcc},
        )
    assert r.json()["x509"]["enrollmentGroupId"] == gid


def test_a_forwarded_for_header_does_not_make_a_local_client_a_trusted_proxy(
    pki: dict[str, Issued], tmp_path: Path
) -> None:
    """Only the TCP peer counts: a client on 127.0.0.1 claiming ``X-Forwarded-For`` of the
    configured proxy must not have its ``x-forwarded-client-cert`` believed (uvicorn's proxy
    header rewriting, on by default for loopback peers, would have let it)."""
    server = start_server(tmp_path / "data", settings={"trusted_proxies": ["10.0.0.5/32"]})
    try:
        hub = link_hub(server, "spoof")
        ca = tmp_path / "root.pem"
        ca.write_text(pki["root"].pem)
        server.cli("dps", "ca", "add", str(ca), "--name", "root")
        gid, rid = uid("grp-spoof"), uid("x509-spoofed")
        enroll_group(server, gid, hub, ca="root")
        leaf = issue(rid, pki["intermediate"])
        chain = urllib.parse.quote(leaf.pem + pki["intermediate"].pem, safe="")
        xfcc = f'Cert="{urllib.parse.quote(leaf.pem, safe="")}";Chain="{chain}"'
        device = Device(server, rid, tmp_path, None)
        refused = device.register({"x-forwarded-client-cert": xfcc, "x-forwarded-for": "10.0.0.5"})
        assert refused.status_code == 401, refused.text
    finally:
        server.stop()
