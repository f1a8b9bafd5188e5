"""OpenAPI 3.1 documents, one per dialect, built from the code that serves the dialect.

A client generator or a gateway needs the exact wire: each parameter (``api-version`` too), each
request body, each answer and the dialect's error body. Writing that as a file beside the code
would drift from it, so each dialect builds its document in its ``openapi.py`` from the types its
routes decode with (pydantic models, msgspec structs) and from response types written for the
purpose; tests/api/test_openapi.py checks that every route is described and every description is
a route, and the fuzzer (tests/fuzz/) checks every answer against the description. ``make openapi``
writes the documents to docs/openapi/; the dialect serves its own only to authenticated callers.

This module holds what every dialect's document is made of; no dialect logic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.responses import Response

from provisiond import __version__
from provisiond.api.http import json_response

__all__ = [
    "Closed",
    "DialectDocument",
    "Operation",
    "document_response",
    "header_param",
    "json_content",
    "msgspec_components",
    "path_param",
    "pydantic_components",
    "query_param",
    "ref",
]

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"

Schema = dict[str, Any]


class Closed(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of the structs that describe a dialect's answers: closed to other fields, so an answer
    carrying a field its document does not name fails the fuzzer's schema check."""


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": _REF.format(name=name)}


def json_content(schema: Schema, description: str) -> dict[str, Any]:
    """A response (or request body) of JSON matching ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def path_param(name: str, description: str, schema: Schema | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def query_param(
    name: str, description: str, schema: Schema | None = None, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def header_param(
    name: str, description: str, schema: Schema | None = None, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def pydantic_components(models: Sequence[type[BaseModel]], *, mode: str = "validation") -> dict[str, Schema]:
    """JSON Schema 2020-12 (what OpenAPI 3.1 uses) of pydantic ``models`` and what they refer to."""
    _, top = models_json_schema(
        [(model, mode) for model in models],  # type: ignore[misc]
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Schema] = top.get("$defs", {})
    return defs


def msgspec_components(types: Sequence[Any]) -> dict[str, Schema]:
    """JSON Schema 2020-12 of msgspec structs (and what they refer to), by struct name."""
    _, defs = msgspec.json.schema_components(types, ref_template=_REF)
    return dict(defs)


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path, as the document shows it.

    ``path`` is written with the wire's parameter names (``/{idScope}/registrations/…``); the test
    that matches operations to routes compares paths with every ``{…}`` made alike.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    responses: Mapping[str, Mapping[str, Any]]
    parameters: Sequence[Mapping[str, Any]] = ()
    request_body: Mapping[str, Any] | None = None
    description: str = ""
    tags: Sequence[str] = ()

    def as_openapi(self) -> dict[str, Any]:
        op: dict[str, Any] = {"operationId": self.operation_id, "summary": self.summary}
        if self.description:
            op["description"] = self.description
        if self.tags:
            op["tags"] = list(self.tags)
        if self.parameters:
            op["parameters"] = [dict(p) for p in self.parameters]
        if self.request_body is not None:
            op["requestBody"] = dict(self.request_body)
        op["responses"] = {status: dict(answer) for status, answer in self.responses.items()}
        return op


@dataclass(frozen=True, slots=True)
class DialectDocument:
    """A dialect's document: its name (the file name, and the path it is served at), and how to
    build it. Built once per process: the document is a function of the code alone."""

    name: str
    title: str
    api_version: str
    description: str
    operations: Callable[[], Iterable[Operation]]
    components: Callable[[], Mapping[str, Schema]]
    security_schemes: Mapping[str, Mapping[str, Any]]
    servers_note: str = ""
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def path(self) -> str:
        """Where the dialect serves its document (to authenticated callers only)."""
        return f"/openapi/{self.name}.json"

    def build(self) -> dict[str, Any]:
        cached = self._cache.get("doc")
        if cached is None:
            cached = self._cache["doc"] = _assemble(self)
        return cached


def _assemble(doc: DialectDocument) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in doc.operations():
        methods = paths.setdefault(op.path, {})
        if op.method.lower() in methods:
            raise ValueError(f"{op.method} {op.path} is described twice")
        methods[op.method.lower()] = op.as_openapi()
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": doc.title,
            "version": doc.api_version,
            "description": doc.description,
            "x-provisiond-version": __version__,
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(doc.components().items())),
            "securitySchemes": {name: dict(scheme) for name, scheme in doc.security_schemes.items()},
        },
        "security": [{name: []} for name in doc.security_schemes],
    }


def document_response(doc: DialectDocument) -> Response:
    """The document as the dialect serves it (after the caller authenticated)."""
    return json_response(doc.build())
