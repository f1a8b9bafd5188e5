"""The one exception to "every route authenticates": a credential policy's CRL."""

from __future__ import annotations

from cryptography import x509

from provisiond.api.dialects import DIALECTS
from tests.api.conftest import DpsApi


def test_only_the_crl_dialect_declares_routes_without_authentication() -> None:
    public = {d.name: d.public_reason for d in DIALECTS if d.public_reason}
    assert list(public) == ["pki"] and "CRL" in public["pki"]
    paths = {route.path for d in DIALECTS if d.public_reason for r in d.routers for route in r.routes}  # type: ignore[attr-defined]
    assert paths == {"/crl/{file}"}


async def test_the_crl_is_served_as_der_to_a_client_without_credentials(dps: DpsApi) -> None:
    await dps.ctx.credential_policies.create("fleet")
    r = await dps.http.get("/crl/fleet.crl")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(r.content)
    assert (
        crl.issuer.rfc4514_string().endswith("CN=provisiond fleet issuing CA")
        or "fleet" in crl.issuer.rfc4514_string()
    )
    assert (await dps.http.get("/crl/FLEET.CRL")).status_code == 200  # names are case-insensitive


async def test_unknown_crls_and_paths_are_404_in_json(dps: DpsApi) -> None:
    for path in ("/crl/none.crl", "/crl/fleet.pem", "/crl/fleet", "/crl/a/b"):
        r = await dps.http.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == 404
    assert (await dps.http.post("/crl/fleet.crl")).status_code == 405
