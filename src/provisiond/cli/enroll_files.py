"""The files ``enroll import`` reads and ``enroll export`` writes: JSON Lines and CSV.

JSON Lines hold one individual enrollment per line exactly as the DPS service API takes it
(``enroll export --format jsonl`` writes them so, certificates included: the lossless format).
CSV has the columns of ``CSV_COLUMNS``, for spreadsheets; what a CSV row cannot say (allocation
policy, reprovisioning, custom allocation, secondary certificates) takes the API's defaults.
Every row becomes the same DPS wire JSON and goes through the service API's own parser
(``api/dps_service/mapping.enrollment_from_wire``), so a file and an API call are held to
exactly the same rules.
"""

from __future__ import annotations

import csv
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from provisiond.api.dps_service.mapping import enrollment_from_wire, enrollment_out
from provisiond.domain.enrollments import Enrollment, EnrollmentKind
from provisiond.errors import InvalidInput
from provisiond.services.enrollments import ItemRejected

__all__ = ["CSV_COLUMNS", "Row", "csv_row", "file_format", "jsonl_object", "read_rows"]

CSV_COLUMNS = (
    "registrationId",
    "attestation",
    "primaryKey",
    "secondaryKey",
    "certificate",
    "endorsementKey",
    "deviceId",
    "iotHubs",
    "provisioningStatus",
    "credentialPolicyName",
    "initialTwin",
)


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the file: its first line, its registration id (when it has one), and the
    enrollment it describes or why it describes none."""

    line: int
    id: str | None
    item: Enrollment | ItemRejected


def file_format(path: Path, given: str | None) -> str:
    """``--format``, else the file's extension: ``.csv`` is CSV, anything else JSON Lines."""
    if given is not None:
        if given not in ("csv", "jsonl"):
            raise InvalidInput(f"--format is csv or jsonl, not {given!r}")
        return given
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def read_rows(path: Path, fmt: str) -> list[Row]:
    """Every row of the file, in order; a row that cannot be read is a row with its reason."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        try:
            return list(_csv_rows(f, path.parent) if fmt == "csv" else _jsonl_rows(f))
        except csv.Error as exc:  # an unterminated quote, a field over the csv module's limit
            raise InvalidInput(f"{path} is not CSV the import can read: {exc}") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"{path} is not UTF-8 text") from None


def _parsed(line: int, rid: str | None, wire: Any) -> Row:
    try:
        # As api-version 2025-07-01-preview takes it: the newest schema, credentialPolicyName too.
        return Row(line, rid, enrollment_from_wire(EnrollmentKind.INDIVIDUAL, wire, issuance=True))
    except InvalidInput as exc:
        return Row(line, rid, ItemRejected(rid or "", exc))


def _jsonl_rows(f: TextIO) -> Iterator[Row]:
    for n, text in enumerate(f, 1):
        if not text.strip():
            continue
        try:
            wire = json.loads(text)
        except ValueError as exc:
            yield Row(n, None, ItemRejected("", InvalidInput(f"not a JSON object: {exc}")))
            continue
        rid = wire.get("registrationId") if isinstance(wire, dict) else None
        yield _parsed(n, rid if isinstance(rid, str) else None, wire)


def _csv_rows(f: TextIO, base: Path) -> Iterator[Row]:
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown or "registrationId" not in header:
        raise InvalidInput(
            f"the CSV header must name registrationId and only these columns: {', '.join(CSV_COLUMNS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    start = 2  # a record may span lines (a PEM in quotes): it is reported at its first line
    for record in reader:
        line, start = start, reader.line_num + 1
        rid = (record.get("registrationId") or "").strip() or None
        try:
            wire = _csv_wire(record, base)
        except InvalidInput as exc:
            yield Row(line, rid, ItemRejected(rid or "", exc))
            continue
        yield _parsed(line, rid, wire)


def _cell(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    return value.strip() if isinstance(value, str) else ""


def _csv_wire(record: dict[str, Any], base: Path) -> dict[str, Any]:
    """A CSV record as DPS IndividualEnrollment JSON."""
    if record.get(None):  # type: ignore[call-overload]  # DictReader puts surplus cells under None
        raise InvalidInput("the row has more cells than the header has columns")
    kind = _cell(record, "attestation") or "symmetricKey"
    if kind == "symmetricKey":
        keys = {name: _cell(record, name) for name in ("primaryKey", "secondaryKey") if _cell(record, name)}
        attestation: dict[str, Any] = {"type": kind, "symmetricKey": keys}
    elif kind == "x509":
        pem = _certificate(_cell(record, "certificate"), base)
        attestation = {"type": kind, "x509": {"clientCertificates": {"primary": {"certificate": pem}}}}
    elif kind == "tpm":
        attestation = {"type": kind, "tpm": {"endorsementKey": _cell(record, "endorsementKey")}}
    else:
        raise InvalidInput(f"attestation is symmetricKey, x509 or tpm, not {kind!r}")
    wire: dict[str, Any] = {"registrationId": _cell(record, "registrationId"), "attestation": attestation}
    if _cell(record, "deviceId"):
        wire["deviceId"] = _cell(record, "deviceId")
    if _cell(record, "iotHubs"):
        wire["iotHubs"] = _cell(record, "iotHubs").split()
    if _cell(record, "provisioningStatus"):
        wire["provisioningStatus"] = _cell(record, "provisioningStatus")
    if _cell(record, "credentialPolicyName"):
        # Checked like the API's: a name that is no credential policy fails the row.
        wire["credentialPolicyName"] = _cell(record, "credentialPolicyName")
    if _cell(record, "initialTwin"):
        try:
            wire["initialTwin"] = json.loads(_cell(record, "initialTwin"))
        except ValueError as exc:
            raise InvalidInput(f"initialTwin is not JSON: {exc}") from None
    return wire


def _certificate(value: str, base: Path) -> str:
    """A PEM in the cell, or the path of a PEM file (relative to the CSV file's directory)."""
    if not value:
        raise InvalidInput("an x509 row needs a certificate: a PEM or the path of one")
    if "-----BEGIN" in value:
        return value
    path = (base / value).resolve()
    # Only certificate files beside the CSV: a row must not make the import read whatever the
    # operator's account can (a key file, a FIFO, /dev/zero) and enroll it if it parses.
    if not path.is_relative_to(base.resolve()):
        raise InvalidInput(f"certificate file {value!r} is not in the CSV file's directory or below")
    try:
        if not path.is_file() or path.stat().st_size > _MAX_CERTIFICATE_FILE:
            raise InvalidInput(f"certificate file {value!r} is not a file of at most 64 KiB")
        return path.read_text(encoding="ascii")
    except OSError as exc:
        raise InvalidInput(f"certificate file {value!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"certificate file {value!r} is not a PEM file") from None


_MAX_CERTIFICATE_FILE = 64 * 1024


def jsonl_object(e: Enrollment) -> dict[str, Any]:
    """An enrollment as the service API returns it, plus its client certificates' PEM (which
    the API never returns), so the line can be imported again as it is."""
    out = enrollment_out(e, issuance=True)
    x509 = e.attestation.x509
    client = out["attestation"].get("x509", {}).get("clientCertificates")
    if x509 is not None and client is not None:
        for slot, cert in (("primary", x509.client_primary), ("secondary", x509.client_secondary)):
            if cert is not None:
                client[slot] = {"certificate": ssl.DER_cert_to_PEM_cert(cert.der)}
    return out


def csv_row(e: Enrollment) -> dict[str, str]:
    """An enrollment as a CSV row (``CSV_COLUMNS``)."""
    att = e.attestation
    client = att.x509.client_primary if att.x509 else None
    return {
        "registrationId": e.id,
        "attestation": att.type.value,
        "primaryKey": att.symmetric_key.primary_key if att.symmetric_key else "",
        "secondaryKey": att.symmetric_key.secondary_key if att.symmetric_key else "",
        "certificate": ssl.DER_cert_to_PEM_cert(client.der) if client else "",
        "endorsementKey": att.tpm.endorsement_key if att.tpm else "",
        "deviceId": e.device_id or "",
        "iotHubs": " ".join(e.iot_hubs or ()),
        "provisioningStatus": "enabled" if e.provisioning_enabled else "disabled",
        "credentialPolicyName": e.credential_policy or "",
        "initialTwin": json.dumps(e.initial_twin) if e.initial_twin is not None else "",
    }
