"""Every dialect's OpenAPI document: valid 3.1, up to date in docs/openapi/, describing exactly the
routes the dialect serves, and served only to callers the dialect authenticates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from openapi_spec_validator import OpenAPIV31SpecValidator

from provisiond.api.dialects import DIALECTS
from provisiond.api.edge import Dialect
from provisiond.api.openapi_documents import documents, main, rendered
from tests.api.conftest import DpsApi

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"

# The five wire APIs users generate clients from (metrics, bench and the CRL are not APIs).
DESCRIBED = {
    "dps_service": "dps-service",
    "dps_device": "dps-device",
    "zerotouch": "zerotouch",
    "reseller": "reseller",
    "sphere": "sphere",
}


def _dialect(name: str) -> Dialect:
    return next(d for d in DIALECTS if d.name == name)


def _described() -> list[Dialect]:
    return [d for d in DIALECTS if d.document is not None]


def test_the_five_api_dialects_and_only_they_describe_themselves() -> None:
    assert {d.name: d.document.name for d in _described() if d.document} == DESCRIBED


@pytest.mark.parametrize("doc", documents(), ids=lambda d: d.name)
def test_each_document_is_valid_openapi_3_1(doc) -> None:  # type: ignore[no-untyped-def]
    built = doc.build()
    assert built["openapi"].startswith("3.1")
    errors = [e.message for e in OpenAPIV31SpecValidator(built).iter_errors()]
    assert errors == []


@pytest.mark.parametrize("doc", documents(), ids=lambda d: d.name)
def test_the_committed_document_is_the_one_the_code_builds(doc) -> None:  # type: ignore[no-untyped-def]
    committed = DOCS / f"{doc.name}.json"
    assert committed.read_text(encoding="utf-8") == rendered(doc), "run make openapi"


def test_make_openapi_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{d.name}.json" for d in documents())
    first = next(tmp_path.iterdir())
    first.write_text(first.read_text(encoding="utf-8").replace('"3.1.0"', '"3.0.0"'), encoding="utf-8")
    assert main([str(tmp_path), "--check"]) == 1


def _shape(path: str) -> str:
    """A path with every parameter made alike ({id_scope}, {idScope} and {name:path} are one)."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.mark.parametrize("dialect", _described(), ids=lambda d: d.name)
def test_every_route_is_described_and_every_operation_is_a_route(dialect: Dialect) -> None:
    assert dialect.document is not None
    served = {
        (method, _shape(route.path))
        for router in dialect.routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.path != dialect.document.path
        for method in route.methods - {"HEAD"}
    }
    doc = dialect.document.build()
    described = {(method.upper(), _shape(path)) for path, item in doc["paths"].items() for method in item}
    assert described == served


@pytest.mark.parametrize("dialect", _described(), ids=lambda d: d.name)
def test_every_operation_declares_its_answers_and_a_unique_id(dialect: Dialect) -> None:
    assert dialect.document is not None
    doc = dialect.document.build()
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            assert any(s.startswith("4") for s in statuses), (method, path)  # its error format
            for status, answer in op["responses"].items():
                if status.startswith("4") or status.startswith("5"):
                    assert "content" in answer, (method, path, status)


async def test_there_is_no_app_wide_unauthenticated_description(dps: DpsApi) -> None:
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        r = await dps.http.get(path)
        assert r.status_code == 404, path


async def test_the_dps_service_document_needs_a_service_token(dps: DpsApi) -> None:
    path = "/openapi/dps-service.json"
    anonymous = await dps.http.get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["errorCode"] == 401000  # the dialect's own error body
    forged = await dps.http.get(path, headers={"Authorization": dps.token(key="QUJD" * 11)})
    assert forged.status_code == 401
    r = await dps.http.get(path, headers={"Authorization": dps.token()})
    assert r.status_code == 200
    assert r.json() == _dialect("dps_service").document.build()  # type: ignore[union-attr]
    wrong_method = await dps.http.post(path, headers={"Authorization": dps.token()})
    assert wrong_method.status_code == 405 and wrong_method.json()["errorCode"] == 405000
