"""Sphere routes (public API v2): authorize -> parse -> service -> render, a few lines each."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisiond.api import http
from provisiond.api.context import context
from provisiond.api.edge import Dialect
from provisiond.api.openapi import document_response
from provisiond.api.sphere import mapping
from provisiond.api.sphere.auth import authenticate, authorize
from provisiond.api.sphere.errors import POLICY
from provisiond.api.sphere.openapi import DOCUMENT
from provisiond.api.sphere.schemas import PREFIX
from provisiond.domain.sphere import SphereOperation

__all__ = ["DIALECT", "MAX_BODY", "owns_path", "router"]

MAX_BODY = 256 * 1024  # the public API's request limit

router = APIRouter(route_class=POLICY.route_class)


def owns_path(path: str) -> bool:
    """Whether an unknown path belongs to this dialect (for answering it in this format)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _accepted(request: Request, op: SphereOperation) -> Response:
    """202 with the Operation and a ``Location`` to poll."""
    body = mapping.operation_out(op, _base(request))
    location = mapping.operation_location(_base(request), op)
    return http.json_response(body, 202, headers={"Location": location})


@router.get(PREFIX)
async def list_tenants(request: Request) -> Response:
    tenant = await authenticate(request)
    return http.json_response([mapping.tenant_out(tenant)])


@router.put(PREFIX + "/{tenant_id}/devices/{device_id}/claim")
async def claim(request: Request, tenant_id: str, device_id: str) -> Response:
    tenant = await authorize(request, tenant_id)
    op = await context(request).sphere.claim(tenant, device_id)
    return _accepted(request, op)


@router.put(PREFIX + "/{tenant_id}/devices")
async def bulk_claim(request: Request, tenant_id: str) -> Response:
    tenant = await authorize(request, tenant_id)
    device_ids = mapping.device_ids_from_wire(await http.read_json(request, MAX_BODY))
    op = await context(request).sphere.bulk_claim(tenant, device_ids)
    return _accepted(request, op)


@router.get(PREFIX + "/{tenant_id}/devices")
async def list_devices(request: Request, tenant_id: str) -> Response:
    tenant = await authorize(request, tenant_id)
    limit = mapping.page_size(request.query_params.get("maxPageSize"))
    after = mapping.decode_continuation(request.headers.get("sphere-continuation"))
    page, more = await context(request).sphere.devices(tenant, after, limit)
    token = mapping.encode_continuation(page[-1].device_id) if more else None
    items = [mapping.device_out(d, tenant) for d in page]
    return http.json_response({"Items": items, "ContinuationToken": token})


@router.get(PREFIX + "/{tenant_id}/devices/{device_id}")
async def get_device(request: Request, tenant_id: str, device_id: str) -> Response:
    tenant = await authorize(request, tenant_id)
    device = await context(request).sphere.device(tenant, device_id)
    return http.json_response(mapping.device_out(device, tenant))


@router.get(PREFIX + "/{tenant_id}/operations/{operation_id}")
async def get_operation(request: Request, tenant_id: str, operation_id: str) -> Response:
    tenant = await authorize(request, tenant_id)
    op = await context(request).sphere.operation(tenant, operation_id)
    return http.json_response(mapping.operation_out(op, _base(request)))


@router.get(PREFIX + "/{tenant_id}/operations/{operation_id}/details")
async def get_operation_details(request: Request, tenant_id: str, operation_id: str) -> Response:
    tenant = await authorize(request, tenant_id)
    service = context(request).sphere
    op = await service.operation(tenant, operation_id)
    return http.json_response(mapping.details_out(op, await service.operation_items(op)))


@router.get(DOCUMENT.path, name="sphere_openapi")
async def openapi_document(request: Request) -> Response:
    """The API's OpenAPI document, for any tenant's token."""
    await authenticate(request)
    return document_response(DOCUMENT)


DIALECT = Dialect("sphere", (router,), POLICY, owns_path=owns_path, document=DOCUMENT)
