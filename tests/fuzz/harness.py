"""The fuzzing harness: one real ``provisiond serve`` with a credential for every dialect, and the
loop that sends schemathesis's generated cases to it and checks each answer.

Every dialect's test (``test_fuzz_*.py``) loads the document the dialect *serves* (so the served
copy is what is fuzzed), wires the dialect's real credentials into each case, and calls
``run_case``: the answer must not be a 5xx, must have a documented status, and must match the
documented schema (errors included, so every error is in the dialect's format).

``PROVISIOND_FUZZ_EXAMPLES`` sets the examples per operation: a few in ``make test`` (a bounded
run), many in ``make fuzz``. ``PROVISIOND_FUZZ_REPORT`` names a JSON file where each test adds
how many cases it sent, per dialect (``make fuzz`` prints the totals).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from provisiond.domain.device_identifiers import imei_check_digit
from provisiond.domain.sas import build_sas, derive_device_key
from tests.support.server import ServerProcess, start_server

__all__ = ["EXAMPLES", "FuzzTarget", "fuzz_operation", "fuzz_target", "load_schema", "operations"]

EXAMPLES = int(os.environ.get("PROVISIOND_FUZZ_EXAMPLES", "8"))
# make test's bounded run is the same cases every time (a red CI must be reproducible); make fuzz
# sets PROVISIOND_FUZZ_RANDOM=1 to explore new ones on every run.
RANDOM = os.environ.get("PROVISIOND_FUZZ_RANDOM") == "1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"
GROUP = "fuzz-group"
GROUP_KEY = "Zm4tZnV6ei1ncm91cC1rZXktMzItYnl0ZXMtbG9uZyE="

# RFC 9110 field-value: visible characters, obs-text, spaces and tabs inside.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")

_NOT_HTTP = "Invalid HTTP request received."


def _is_http(case: Case) -> bool:
    return all(_FIELD_VALUE.fullmatch(str(v)) for v in (case.headers or {}).values())


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class FuzzTarget:
    """The server and one credential per dialect."""

    server: ServerProcess
    partner_id: str
    partner_token: str
    tenant_id: str
    tenant_token: str
    session: requests.Session
    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[tuple[str, int]] = field(default_factory=Counter)  # (dialect, status)

    def service_sas(self) -> str:
        return self.server.service_sas()

    def device_sas(self, registration_id: str) -> str:
        """A group-derived device token for any registration id (the fuzzer picks the ids)."""
        key = derive_device_key(GROUP_KEY, registration_id)
        resource = f"{self.server.id_scope}/registrations/{registration_id}"
        return build_sas(key, resource, int(time.time()) + 3600, "registration")

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def _cli_json(server: ServerProcess, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(server.cli(*args, "--json").stdout)
    return out


def fuzz_target(tmp: Path, database: str | None = None) -> Iterator[FuzzTarget]:
    """Start the server (on ``database``, else SQLite) and make its credentials (a generator for a
    pytest fixture)."""
    server = start_server(tmp / "data", database=database)
    try:
        partner = _cli_json(server, "partner", "create", "fuzz-partner")
        tenant = _cli_json(server, "tenant", "create", "fuzz-tenant")
        session = requests.Session()
        session.verify = server.ca
        session.trust_env = False
        target = FuzzTarget(
            server,
            str(partner["partnerId"]),
            str(partner["token"]),
            str(tenant["tenantId"]),
            str(tenant["token"]),
            session,
        )
        with server.http() as http:
            r = http.put(
                f"/enrollmentGroups/{GROUP}",
                params={"api-version": "2021-10-01"},
                json={
                    "enrollmentGroupId": GROUP,
                    "attestation": {
                        "type": "symmetricKey",
                        "symmetricKey": {"primaryKey": GROUP_KEY, "secondaryKey": GROUP_KEY},
                    },
                },
                headers={"Authorization": target.service_sas()},
            )
            assert r.status_code == 200, r.text
        yield target
        _report(target)
    finally:
        server.stop()


def _report(target: FuzzTarget) -> None:
    path = os.environ.get("PROVISIOND_FUZZ_REPORT")
    if not path or not target.sent:
        return
    # One line per worker and dialect; make fuzz adds them up (workers append concurrently).
    with open(path, "a", encoding="utf-8") as out:
        for dialect, count in target.sent.items():
            statuses = {str(s): n for (d, s), n in sorted(target.answered.items()) if d == dialect}
            out.write(json.dumps({"dialect": dialect, "cases": count, "statuses": statuses}) + "\n")


def load_schema(target: FuzzTarget, document_path: str, headers: dict[str, str]) -> BaseSchema:
    """The document as the dialect serves it to an authenticated caller."""
    with target.server.http() as http:
        r = http.get(document_path, headers=headers)
    assert r.status_code == 200, r.text
    schema = schemathesis.openapi.from_dict(r.json())
    schema.config.update(base_url=target.server.base_url)
    return schema


def operations(document: str) -> list[tuple[str, str]]:
    """(method, path) of every operation of the committed document ``document`` (the tests check
    that it is the one the dialect serves), to parametrize a dialect's fuzz test at collection."""
    doc = json.loads((DOCS / f"{document}.json").read_text(encoding="utf-8"))
    return [(method.upper(), path) for path, item in doc["paths"].items() for method in item]


def fuzz_operation(
    target: FuzzTarget,
    schema: BaseSchema,
    dialect: str,
    method: str,
    path: str,
    credentials: Callable[[Case], dict[str, str]],
    *,
    path_parameters: dict[str, Any] | None = None,
    seeded: dict[str, Any] | None = None,
    examples: int = EXAMPLES,
) -> None:
    """Send generated requests for one operation, each with the dialect's real credentials
    (``credentials(case)``, which may depend on the case, such as a device token for the
    generated registration id), and check every answer.

    Three passes of ``examples`` cases: valid requests, invalid ones (schemathesis's negative
    mode: wrong types, missing fields, bad parameters), and valid requests whose path names
    resources that exist (``seeded``, when the operation has path parameters: random ids almost
    never exist, so without it the success answers would go unchecked). ``path_parameters`` are
    fixed in every pass (a partner's or tenant's own id, which the credential is for).
    """
    operation = schema[path][method]
    documented = set(schema.raw_schema["paths"][path][method.lower()]["responses"])
    fixed = path_parameters or {}
    passes = [(GenerationMode.POSITIVE, fixed), (GenerationMode.NEGATIVE, fixed)]
    if seeded and "{" in path:
        wanted = {p.name for p in operation.path_parameters}
        passes.append(
            (GenerationMode.POSITIVE, {**{k: v for k, v in seeded.items() if k in wanted}, **fixed})
        )
    for mode, params in passes:
        strategy = operation.as_strategy(mode, path_parameters=params or None)

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=not RANDOM,
        )
        def send(case: Case) -> None:
            case.headers = {**(case.headers or {}), **credentials(case)}
            target.sent[dialect] += 1
            response = case.call(session=target.session, timeout=30, verify=target.server.ca)
            target.answered[dialect, response.status_code] += 1
            if response.text == _NOT_HTTP and not _is_http(case):
                # Not HTTP (a control character in a header): the HTTP layer refuses it before
                # any dialect sees it, with 400 and a line of text (docs/security.md).
                assert response.status_code == 400
                return
            checks = CHECKS
            if response.status_code == 501 and "501" in documented:
                # A designed refusal (the reseller model's SAMSUNG claimDevice), documented as such.
                checks = [c for c in CHECKS if c is not not_a_server_error]
            case.validate_response(response, checks=checks)

        send()


def imei(n: int, tac: str) -> str:
    """The ``n``-th IMEI of type allocation code ``tac``, check digit included. Each dialect's
    seeds use a TAC of their own: the dialects share the server and its devices."""
    body = f"{tac}{n:012d}"
    return body + imei_check_digit(body)
