"""Zero-touch reseller API v1 routes: authorize -> parse -> service -> render, a few lines each.

Paths follow Google's Android Device Provisioning Partner API v1 discovery document, custom verbs
after a literal ``:``. Standard query parameters (``alt``, ``prettyPrint``, ``fields``, ``key`` …)
are ignored. Only auth, a body that is not the request's JSON shape, a missing ``sectionType`` and
more than 100,000 items fail an async request as a whole; everything about a single device is
reported in its own result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisiond.api.context import AppContext
from provisiond.api.edge import Dialect
from provisiond.api.http import read_body
from provisiond.api.openapi import document_response
from provisiond.api.zerotouch import mapping
from provisiond.api.zerotouch.auth import authorize
from provisiond.api.zerotouch.errors import MAX_BODY, POLICY, ZtError
from provisiond.api.zerotouch.lro import ZT_KINDS, operation_id, operation_out
from provisiond.api.zerotouch.mapping import MAX_OWNER_IDS
from provisiond.api.zerotouch.openapi import DOCUMENT
from provisiond.api.zerotouch.schemas import (
    ClaimDeviceRequest,
    ClaimDevicesRequest,
    CreateCustomerRequest,
    FindDevicesByDeviceIdentifierRequest,
    FindDevicesByOwnerRequest,
    UnclaimDeviceRequest,
    UnclaimDevicesRequest,
    UpdateDeviceMetadataInBatchRequest,
    UpdateDeviceMetadataRequest,
    decode,
    parse_int64,
)
from provisiond.domain.claims import ClaimItem, Operation, OperationKind, Partner, UnclaimItem, UpdateItem
from provisiond.domain.device_identifiers import Vendor
from provisiond.errors import NotFound

__all__ = ["DIALECT", "MAX_OWNER_IDS", "owns_path", "router"]

router = APIRouter(route_class=POLICY.route_class)

_PARTNER = "/v1/partners/{partner_id}"
_FEW = 20  # up to this many customer ids are looked up one by one; beyond, hidden ones are listed
_EVERYTHING = 1 << 31

T = TypeVar("T")


def _ok(content: Any) -> Response:
    """A 200 JSON response (msgspec encodes a 100,000-item operation quickly)."""
    return Response(msgspec.json.encode(content), media_type="application/json")


async def _body(request: Request, model: type[T]) -> T:
    return decode(await read_body(request, MAX_BODY), model)


def _path_id(value: str, name: str) -> int:
    try:
        return int(parse_int64(value))
    except ValueError:
        raise ZtError(400, f"Invalid value at '{name}' (TYPE_INT64), \"{value}\"") from None


async def _hidden_customers(ctx: AppContext, partner: Partner, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` are the partner's SAMSUNG customers: they do not exist in this dialect."""
    wanted = set(ids)
    if not wanted:
        return set()
    if len(wanted) <= _FEW:
        hidden = set()
        for customer_id in wanted:
            try:
                customer = await ctx.claims.customer(partner, customer_id)
            except NotFound:
                continue  # not the partner's: the core refuses it per device
            if customer.vendor is Vendor.SAMSUNG:
                hidden.add(customer_id)
        return hidden
    found: set[int] = set()
    after = None
    while True:
        page, _, more = await ctx.claims.customers(partner, Vendor.SAMSUNG, after, 1000)
        found.update(c.id for c in page)
        if not more or not page:
            return found & wanted
        after = page[-1].id


async def _submitted(ctx: AppContext, partner: Partner, kind: OperationKind, items: Any) -> Response:
    op: Operation = await ctx.claims.submit(partner, kind, Vendor.GOOGLE, items)
    return _ok(operation_out(op, [] if op.done else None))


# -- customers -----------------------------------------------------------------------------------


@router.post(f"{_PARTNER}/customers", name="zt_customers_create")
async def customers_create(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    body = await _body(request, CreateCustomerRequest)
    name, owners, admins = mapping.customer_fields(body.customer)
    customer = await ctx.claims.create_customer(partner, name, Vendor.GOOGLE, owners, admins)
    return _ok(mapping.company_out(partner.id, customer))


@router.get(f"{_PARTNER}/customers", name="zt_customers_list")
async def customers_list(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    size = mapping.page_size(request.query_params.get("pageSize"))
    after = mapping.page_token_in("customers", request.query_params.get("pageToken"))
    page, total, more = await ctx.claims.customers(partner, Vendor.GOOGLE, after, size or _EVERYTHING)
    out: dict[str, Any] = {
        "customers": [mapping.company_out(partner.id, c) for c in page],
        "totalSize": total,
    }
    if more and page:
        out["nextPageToken"] = mapping.page_token_out("customers", page[-1].id)
    return _ok(out)


# -- devices: synchronous ------------------------------------------------------------------------


async def _apply_now(
    ctx: AppContext, partner: Partner, kind: OperationKind, item: ClaimItem | UnclaimItem | UpdateItem
) -> int:
    result = await ctx.claims.apply_now(partner, kind, Vendor.GOOGLE, item)
    failure = mapping.sync_failure(kind, result)
    if failure is not None:
        raise failure
    assert result.device_id is not None  # every successful item names its device
    return result.device_id


@router.post(f"{_PARTNER}/devices:claim", name="zt_devices_claim")
async def devices_claim(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    body = await _body(request, ClaimDeviceRequest)
    hidden = await _hidden_customers(ctx, partner, [body.customer_id] if body.customer_id is not None else [])
    device_id = await _apply_now(ctx, partner, OperationKind.CLAIM, mapping.one_claim(body, hidden))
    return _ok({"deviceId": str(device_id), "deviceName": mapping.device_name(partner.id, device_id)})


@router.post(f"{_PARTNER}/devices:unclaim", name="zt_devices_unclaim")
async def devices_unclaim(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    body = await _body(request, UnclaimDeviceRequest)
    await _apply_now(ctx, partner, OperationKind.UNCLAIM, mapping.one_unclaim(body))
    return _ok({})  # Empty: googleapiclient cannot parse an empty 200


@router.get(f"{_PARTNER}/devices/{{device_id}}", name="zt_devices_get")
async def devices_get(partner_id: str, device_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    device = await ctx.claims.device(partner, _path_id(device_id, "device_id"))
    return _ok(mapping.device_out(partner, device))


@router.post(f"{_PARTNER}/devices/{{device_id}}/metadata", name="zt_devices_metadata")
async def devices_metadata(partner_id: str, device_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    wanted = _path_id(device_id, "device_id")
    body = await _body(request, UpdateDeviceMetadataRequest)
    if body.device_metadata is None:
        raise ZtError(400, "deviceMetadata is required")
    entries = mapping.metadata_in(body.device_metadata)
    result = await ctx.claims.set_metadata(partner, Vendor.GOOGLE, wanted, entries)
    failure = mapping.sync_failure(OperationKind.UPDATE_METADATA, result)
    if failure is not None:
        raise failure
    return _ok({"entries": entries})


@router.post(f"{_PARTNER}/devices:findByIdentifier", name="zt_devices_find_by_identifier")
async def devices_find_by_identifier(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    body = await _body(request, FindDevicesByDeviceIdentifierRequest)
    limit = mapping.find_limit(body.limit)
    after = mapping.page_token_in("byIdentifier", body.page_token)
    identifier = mapping.find_identifier(body.device_identifier)
    found, total, more = await ctx.claims.find_by_identifier(partner, identifier, after, limit)
    next_after = found[-1].id if more and found else None
    return _ok(mapping.devices_page_out(partner, found, total, next_after, "byIdentifier"))


@router.post(f"{_PARTNER}/devices:findByOwner", name="zt_devices_find_by_owner")
async def devices_find_by_owner(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    body = await _body(request, FindDevicesByOwnerRequest)
    section = mapping.required_section(body.section_type, "$.sectionType")
    limit = mapping.find_limit(body.limit)
    after = mapping.page_token_in("byOwner", body.page_token)
    wanted = list(dict.fromkeys(int(i) for i in body.customer_id or ()))
    if len(wanted) > MAX_OWNER_IDS:
        raise ZtError(400, f"customerId lists {len(wanted)} customers; at most {MAX_OWNER_IDS} are accepted")
    hidden = await _hidden_customers(ctx, partner, wanted)
    owners = [i for i in wanted if i not in hidden]  # Workspace ids name no customer here
    if not owners:
        return _ok(mapping.devices_page_out(partner, [], 0, None, "byOwner"))
    found, total, more = await ctx.claims.find_by_owner(partner, owners, section, after, limit)
    next_after = found[-1].id if more and found else None
    return _ok(mapping.devices_page_out(partner, found, total, next_after, "byOwner"))


# -- devices: long-running -----------------------------------------------------------------------


@router.post(f"{_PARTNER}/devices:claimAsync", name="zt_devices_claim_async")
async def devices_claim_async(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    claims = (await _body(request, ClaimDevicesRequest)).claims or []
    mapping.check_count(claims, "claims")
    hidden = await _hidden_customers(
        ctx, partner, {int(c.customer_id) for c in claims if c.customer_id is not None}
    )
    return await _submitted(ctx, partner, OperationKind.CLAIM, mapping.claim_items(claims, hidden))


@router.post(f"{_PARTNER}/devices:unclaimAsync", name="zt_devices_unclaim_async")
async def devices_unclaim_async(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    unclaims = (await _body(request, UnclaimDevicesRequest)).unclaims or []
    return await _submitted(ctx, partner, OperationKind.UNCLAIM, mapping.unclaim_items(unclaims))


@router.post(f"{_PARTNER}/devices:updateMetadataAsync", name="zt_devices_update_metadata_async")
async def devices_update_metadata_async(partner_id: str, request: Request) -> Response:
    ctx, partner = await authorize(request, partner_id)
    updates = (await _body(request, UpdateDeviceMetadataInBatchRequest)).updates or []
    return await _submitted(ctx, partner, OperationKind.UPDATE_METADATA, mapping.update_items(updates))


@router.get("/v1/operations/{name:path}", name="zt_operations_get")
async def operations_get(name: str, request: Request) -> Response:
    ctx, partner = await authorize(request, None)
    op_id = operation_id(name)
    if op_id is None:
        raise ZtError(404, f"operation operations/{name} not found")
    op = await ctx.claims.operation(partner, op_id)  # another partner's: NotFound -> 404
    if op.vendor is not Vendor.GOOGLE or op.kind not in ZT_KINDS:  # Knox and Azure Sphere work is not ours
        raise ZtError(404, f"operation operations/{name} not found")
    results = await ctx.claims.operation_results(op) if op.done else None
    return _ok(operation_out(op, results))


@router.get(DOCUMENT.path, name="zt_openapi")
async def openapi_document(request: Request) -> Response:
    """The API's OpenAPI document, for any partner's valid bearer token."""
    await authorize(request, None)
    return document_response(DOCUMENT)


# -- unknown routes ------------------------------------------------------------------------------


def owns_path(path: str) -> bool:
    """Whether an unknown path belongs to this dialect (for answering it in this format)."""
    return path == "/v1" or path.startswith("/v1/")


DIALECT = Dialect("zerotouch", (router,), POLICY, owns_path=owns_path, document=DOCUMENT)
