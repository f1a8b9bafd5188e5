"""``provisiond dps credential-policy …`` and ``dps certificate …``: issuing CAs and their certificates.

No command prints a private key: ``create`` prints the public issuing chain, and the CA key it
generated or read goes sealed into the database (docs/certificates.md).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from provisiond.cli.common import JsonFlag, emit, fail, group, run, with_db, with_settings
from provisiond.config import Settings
from provisiond.domain.credential_policies import DEFAULT_VALIDITY_DAYS, CredentialPolicy, IssuedCertificate
from provisiond.domain.issuing_ca import KeyType
from provisiond.services.credential_policies import CredentialPolicyService
from provisiond.store.db import Database

__all__ = ["certificate_app", "credential_policy_app"]

credential_policy_app = group("Credential policies: the issuing CAs devices get certificates from.")
certificate_app = group("Certificates issued to devices at registration.")

OutFile = Annotated[Path, typer.Option("--out", help="the file to write (replaced atomically)")]


def _service(settings: Settings, db: Database) -> CredentialPolicyService:
    return CredentialPolicyService(db, crl_period=settings.crl_period)


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None


def _write_public(path: Path, text: str) -> Path:
    """Write a public file (a chain, a CRL) so that it replaces the old one in one step: a broker
    reloading it on SIGHUP reads the old file or the new one, never half of one. Mode 0644: the
    broker's user must read it, and nothing in it is secret."""
    target = path.resolve()
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None
    return target


def _policy_json(p: CredentialPolicy) -> dict[str, object]:
    return {
        "name": p.name,
        "validityDays": p.validity_days,
        "keyType": p.key_type,
        "crlUrl": p.crl_url,
        "issuingChainPem": p.chain_pem,
        "createdDateTimeUtc": p.created.isoformat(),
    }


@credential_policy_app.command("create")
@with_settings()
def policy_create(
    settings: Settings,
    name: str,
    validity_days: Annotated[
        int, typer.Option("--validity-days", help="days a device certificate is valid, 7 to 90")
    ] = DEFAULT_VALIDITY_DAYS,
    key_type: Annotated[
        KeyType, typer.Option("--key-type", help="the key of the generated CAs")
    ] = KeyType.EC_P384,
    ca_cert: Annotated[
        Path | None,
        typer.Option("--ca-cert", help="your issuing CA, then every CA above it up to the root (PEM)"),
    ] = None,
    ca_key: Annotated[
        Path | None, typer.Option("--ca-key", help="the issuing CA's private key (unencrypted PEM)")
    ] = None,
    crl_url: Annotated[
        str | None, typer.Option("--crl-url", help="put this CRL Distribution Point in every leaf")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a policy: a new root and issuing CA, or issue from your own intermediate."""
    cert_pem, key_pem = _read(ca_cert), _read(ca_key)

    async def action(db: Database) -> CredentialPolicy:
        return await _service(settings, db).create(
            name,
            validity_days=validity_days,
            key_type=key_type,
            ca_pem=cert_pem,
            ca_key_pem=key_pem,
            crl_url=crl_url,
        )

    policy = run(with_db(settings, action))
    data = _policy_json(policy)
    emit(
        as_json,
        data,
        f"created credential policy {policy.name} ({policy.key_type}, {policy.validity_days} days)\n"
        f"give brokers its issuing chain: provisiond dps credential-policy chain {policy.name} --out FILE",
    )


@credential_policy_app.command("list")
@with_settings()
def policy_list(settings: Settings, as_json: JsonFlag = False) -> None:
    """List the policies (their public chains; never a key)."""
    policies = run(with_db(settings, lambda db: _service(settings, db).all()))
    rows = [_policy_json(p) for p in policies]
    human = "\n".join(
        f"{r['name']}\t{r['keyType']}\t{r['validityDays']} days\t{r['crlUrl'] or ''}" for r in rows
    )
    emit(as_json, {"policies": rows}, human)


@credential_policy_app.command("delete")
@with_settings()
def policy_delete(settings: Settings, name: str, as_json: JsonFlag = False) -> None:
    """Delete a policy, its CA key and its certificate records (refused while one is still valid)."""
    run(with_db(settings, lambda db: _service(settings, db).delete(name)))
    emit(as_json, {"deleted": name}, f"deleted credential policy {name}")


@credential_policy_app.command("chain")
@with_settings()
def policy_chain(settings: Settings, name: str, out: OutFile, as_json: JsonFlag = False) -> None:
    """Write the issuing chain (PEM, issuing CA first, root last): what a broker trusts."""
    policy = run(with_db(settings, lambda db: _service(settings, db).get(name)))
    path = _write_public(out, policy.chain_pem)
    emit(
        as_json,
        {"name": policy.name, "path": str(path)},
        f"wrote the issuing chain of {policy.name} to {path}",
    )


@credential_policy_app.command("crl")
@with_settings()
def policy_crl(settings: Settings, name: str, out: OutFile, as_json: JsonFlag = False) -> None:
    """Write the policy's current CRL (PEM), re-signed first if it is due."""
    crl = run(with_db(settings, lambda db: _service(settings, db).crl(name)))
    path = _write_public(out, crl.pem)
    data = {
        "name": name,
        "path": str(path),
        "crlNumber": crl.number,
        "nextUpdate": crl.next_update.isoformat(),
    }
    emit(as_json, data, f"wrote CRL {crl.number} of {name} to {path} (next update {data['nextUpdate']})")


def _certificate_json(c: IssuedCertificate) -> dict[str, object]:
    return {
        "serialNumber": c.serial,
        "registrationId": c.registration_id,
        "credentialPolicyName": c.policy,
        "sha256Thumbprint": c.sha256_thumbprint,
        "notBeforeUtc": c.not_before.isoformat(),
        "notAfterUtc": c.not_after.isoformat(),
        "issuedDateTimeUtc": c.issued.isoformat(),
        "revokedDateTimeUtc": c.revoked.isoformat() if c.revoked else None,
    }


@certificate_app.command("list")
@with_settings()
def certificate_list(
    settings: Settings,
    registration: Annotated[
        str | None, typer.Option("--registration", help="only this registration id")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List issued certificates, oldest first."""
    certs = run(with_db(settings, lambda db: _service(settings, db).certificates(registration)))
    rows = [_certificate_json(c) for c in certs]
    human = "\n".join(
        f"{r['serialNumber']}\t{r['registrationId']}\t{r['credentialPolicyName']}\t{r['notAfterUtc']}"
        f"\t{'revoked' if r['revokedDateTimeUtc'] else 'valid'}"
        for r in rows
    )
    emit(as_json, {"certificates": rows}, human)


@certificate_app.command("revoke")
@with_settings()
def certificate_revoke(
    settings: Settings,
    registration: Annotated[
        str | None, typer.Option("--registration", help="every certificate this registration got")
    ] = None,
    serial: Annotated[str | None, typer.Option("--serial", help="one certificate, by serial (hex)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke certificates; their policies' CRLs are re-signed at once."""
    if (registration is None) == (serial is None):
        raise fail("give exactly one of --registration ID or --serial S", 2)

    async def action(db: Database) -> tuple[list[str], list[str]]:
        service = _service(settings, db)
        revoked = await service.revoke(registration_id=registration, serial=serial)
        return revoked, await service.still_enrolled(revoked)

    revoked, enrolled = run(with_db(settings, action))
    for rid in enrolled:
        typer.echo(
            f"warning: the enrollment of {rid} is enabled: the device can register again and get a "
            "new certificate; disable the enrollment or rotate its key (docs/certificates.md)",
            err=True,
        )
    human = "\n".join(f"revoked {s}" for s in revoked) or "nothing to revoke: already revoked"
    emit(as_json, {"revoked": revoked}, human)
