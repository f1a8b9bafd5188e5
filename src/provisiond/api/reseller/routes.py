"""Routes of the reseller dialect: ``POST /reseller/v1/{method}``, request object in, response out.

Each handler is authenticate -> decode -> service -> map -> render. Anything under ``/reseller/``
that is not one of the ten methods below (another path, another HTTP verb) is NOT_IMPLEMENTED.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisiond import wirejson
from provisiond.api.context import AppContext, context
from provisiond.api.edge import Dialect
from provisiond.api.http import bearer_token, read_body
from provisiond.api.openapi import document_response
from provisiond.api.reseller import schemas as wire
from provisiond.api.reseller.batches import (
    claim_item,
    claim_target,
    customer_ids,
    named_customers,
    plan_claims,
    plan_unclaims,
    submit_groups,
    unclaim_item,
    unclaim_scope,
)
from provisiond.api.reseller.errors import POLICY, PREFIX, ErrorCode, ResellerError, parse_error_code
from provisiond.api.reseller.mapping import (
    company_out,
    device_out,
    is_reseller_kind,
    kinds_in,
    next_token,
    number_in,
    operation_out,
    owner_claim,
    page_size,
    prefixed_in,
    prefixed_out,
    result_error,
    search_identifier,
    states_in,
    token_in,
    vendor_in,
)
from provisiond.api.reseller.openapi import DOCUMENT
from provisiond.domain.claims import (
    MAX_ITEMS,
    Customer,
    Device,
    ItemResult,
    ItemStatus,
    OperationKind,
    Partner,
    SectionType,
)
from provisiond.domain.device_identifiers import Vendor
from provisiond.errors import NotFound

__all__ = ["DIALECT", "MAX_BODY", "owns_path", "router"]

MAX_BODY = 32 * 1024 * 1024
MAX_OWNER_CUSTOMERS = 100

router = APIRouter(route_class=POLICY.route_class)

T = TypeVar("T")


def owns_path(path: str) -> bool:
    """Whether an unknown path belongs to this dialect (for answering it in this format)."""
    return path == "/reseller" or path.startswith("/reseller/")


# -- the steps every method takes ------------------------------------------------------------------


async def _begin(request: Request, kind: type[T]) -> tuple[AppContext, Partner, T]:
    """Authenticate, then read the body (at most 32 MiB) and decode it into ``kind``.

    An empty body is the empty object. Authentication comes first, so nobody without a token
    makes the server read 32 MiB.
    """
    ctx = context(request)
    partner = await ctx.claims.authenticate(bearer_token(request))
    body = await read_body(request, MAX_BODY)
    request_object: T = wirejson.decode(body if body.strip() else b"{}", kind)
    return ctx, partner, request_object


def _ok(response: msgspec.Struct) -> Response:
    return Response(msgspec.json.encode(response), media_type="application/json")


def _count_check(count: int) -> None:
    """More than 100,000 devices fail the whole request before anything is written."""
    if count > MAX_ITEMS:
        raise ResellerError(
            400,
            ErrorCode.DEVICE_UPLOAD_COUNT_EXCEEDED,
            f"at most {MAX_ITEMS} devices per request, not {count}; nothing was written",
            {"limit": str(MAX_ITEMS), "count": str(count)},
        )


def _sync_failure(
    result: ItemResult, vendor: Vendor, *, claim: bool, customer_status: int = 404
) -> ResellerError:
    """A synchronous call's failed device as the call's error (statuses: errors.py).

    SECTION_NOT_YOURS is a conflict for a claim (the device has another owner) but "not found"
    for an unclaim: the caller holds no claim on it, and must not learn whether anybody does.
    """
    code, error = result_error(result, vendor, "", claim=claim)
    status = {
        ItemStatus.DUPLICATE: 409,
        ItemStatus.SECTION_NOT_YOURS: 409 if claim else 404,
        ItemStatus.NOT_FOUND: 404,
        ItemStatus.PERMISSION_DENIED: customer_status,
        ItemStatus.INVALID_IDENTIFIER: 400,
    }.get(result.status, 500)
    return ResellerError(status, code, error.vendor_msg, error.vendor_params)


async def _devices_out(ctx: AppContext, partner: Partner, devices: list[Device]) -> list[wire.Device]:
    """Devices with their customers (looked up once per customer on the page)."""
    wanted = {claim.customer_id for d in devices if (claim := owner_claim(d, partner)) is not None}
    customers: dict[int, Customer] = await named_customers(ctx.claims, partner, wanted)
    return [device_out(d, partner, customers) for d in devices]


async def _owner(ctx: AppContext, partner: Partner, ref: wire.CompanyReferenceIn) -> int:
    """The id of a customer findDevicesByOwner names; not the caller's: AUTHORIZATION_FAIL, 404."""
    customer_id, vendor = number_in(ref.company_id), vendor_in(ref.vendor)
    if customer_id is None:
        raise ResellerError(
            400, ErrorCode.INVALID_CUSTOMER_ID, f"companyId {ref.company_id!r} is not a customer id"
        )
    customer = await ctx.claims.customer(partner, customer_id)  # raises NotFound
    if vendor not in (None, customer.vendor):
        raise NotFound(f"no customer {customer_id}")
    return customer_id


# -- customers -------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/createCustomer", name="reseller_create_customer")
async def create_customer(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.CompanyIn)
    ref = req.company_reference
    if ref is not None and ref.company_id not in (None, ""):
        raise ResellerError(400, ErrorCode.INVALID_PARAM_DEFAULT, "companyId is assigned by the server")
    vendor = vendor_in(ref.vendor if ref else None) or Vendor.GOOGLE
    customer = await ctx.claims.create_customer(
        partner, req.company_name or "", vendor, vendor_params=dict(req.vendor_params or {})
    )
    return _ok(company_out(customer))


@router.post(f"{PREFIX}/listCustomers", name="reseller_list_customers")
async def list_customers(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.ListCustomersRequest)
    vendor = vendor_in((req.vendor_params or {}).get("vendor"))
    after = token_in("listCustomers", req.page_token)
    page, total, more = await ctx.claims.customers(partner, vendor, after, page_size(req.page_size))
    token = next_token("listCustomers", page[-1].id if page else None, more)
    return _ok(wire.ListCustomersResponse([company_out(c) for c in page], total, token, {}))


# -- claims ----------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/claimDevice", name="reseller_claim_device")
async def claim_device(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.DeviceClaim)
    ref = req.customer
    customer_id = number_in(ref.company_id) if ref is not None else None
    customers = await named_customers(ctx.claims, partner, {customer_id} if customer_id else set())
    vendor, customer = claim_target(ref, customers)
    if vendor is Vendor.SAMSUNG:
        raise ResellerError(
            501, ErrorCode.NOT_IMPLEMENTED, "Samsung devices are claimed with claimDevicesAsync"
        )
    result = await ctx.claims.apply_now(partner, OperationKind.CLAIM, vendor, claim_item(req, customer))
    if result.status is not ItemStatus.SUCCESS or result.device_id is None:
        raise _sync_failure(result, vendor, claim=True, customer_status=404 if customer_id else 400)
    return _ok(wire.ClaimDeviceResponse(prefixed_out(vendor, result.device_id), {}))


@router.post(f"{PREFIX}/claimDevicesAsync", name="reseller_claim_devices_async")
async def claim_devices_async(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.ClaimDevicesAsyncRequest)
    _count_check(len(req.claims))
    customers = await named_customers(ctx.claims, partner, customer_ids(req.claims))
    groups = plan_claims(req.claims, customers)
    return _ok(wire.OperationsResponse(await submit_groups(ctx.claims, partner, OperationKind.CLAIM, groups)))


@router.post(f"{PREFIX}/unclaimDevice", name="reseller_unclaim_device")
async def unclaim_device(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.DeviceUnclaim)
    scope = await unclaim_scope(ctx.claims, partner, req.vendor_params)
    vendor, item, refused = unclaim_item(req, scope.vendor)
    if refused is not None:
        raise ResellerError(400, *refused)
    if vendor is Vendor.SAMSUNG and scope.problem is not None:
        raise ResellerError(scope.problem[0], ErrorCode.INVALID_CUSTOMER_ID, scope.problem[1])
    result = await ctx.claims.apply_now(partner, OperationKind.UNCLAIM, vendor, item)
    if result.status is not ItemStatus.SUCCESS or result.device_id is None:
        raise _sync_failure(result, vendor, claim=False)
    return _ok(wire.ClaimDeviceResponse(prefixed_out(vendor, result.device_id), {}))


@router.post(f"{PREFIX}/unclaimDevicesAsync", name="reseller_unclaim_devices_async")
async def unclaim_devices_async(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.UnclaimDevicesAsyncRequest)
    _count_check(len(req.unclaims))
    scope = await unclaim_scope(ctx.claims, partner, req.vendor_params)
    groups = plan_unclaims(req.unclaims, scope)
    return _ok(
        wire.OperationsResponse(await submit_groups(ctx.claims, partner, OperationKind.UNCLAIM, groups))
    )


# -- operations ------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/getOperation", name="reseller_get_operation")
async def get_operation(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.GetOperationRequest)
    parsed = prefixed_in(req.operation_id)
    if parsed is None:
        raise ResellerError(
            400, ErrorCode.INVALID_OPERATION_ID, "operationId must be google/<number> or samsung/<number>"
        )
    raw_filter = (req.vendor_params or {}).get("errorCode")
    only = parse_error_code(raw_filter) if raw_filter else None
    if raw_filter and only is None:
        raise ResellerError(
            400, ErrorCode.INVALID_PARAM_DEFAULT, f"vendorParams.errorCode {raw_filter!r} is not an ErrorCode"
        )
    op = await ctx.claims.operation(partner, parsed[1])
    if op.vendor is not parsed[0] or not is_reseller_kind(op.kind):
        raise NotFound(f"no operation {req.operation_id}")
    # deviceErrors are listed once the operation has ended: reading every item of a running
    # 100,000-device operation on each poll would slow the worker that runs it.
    results = await ctx.claims.operation_results(op) if op.done else ()
    return _ok(operation_out(op, results, only))


@router.post(f"{PREFIX}/listOperations", name="reseller_list_operations")
async def list_operations(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.ListOperationsRequest)
    kinds, states = kinds_in(req.operation_type), states_in(req.state)
    after = token_in("listOperations", req.page_token)
    page, total, more = await ctx.claims.operations(partner, kinds, states, after, page_size(req.page_size))
    token = next_token("listOperations", page[-1].id if page else None, more)
    return _ok(wire.ListOperationsResponse([operation_out(op) for op in page], total, token, {}))


# -- devices ---------------------------------------------------------------------------------------


@router.post(f"{PREFIX}/findDevicesByOwner", name="reseller_find_devices_by_owner")
async def find_devices_by_owner(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.FindDevicesByOwnerRequest)
    refs = req.customers or []
    if not refs:
        raise ResellerError(400, ErrorCode.INVALID_CUSTOMER_ID, "name at least one customer")
    if len(refs) > MAX_OWNER_CUSTOMERS:
        raise ResellerError(
            400, ErrorCode.INVALID_PARAM_DEFAULT, f"at most {MAX_OWNER_CUSTOMERS} customers, not {len(refs)}"
        )
    ids = [await _owner(ctx, partner, ref) for ref in refs]
    after = token_in("findDevicesByOwner", req.page_token)
    devices, total, more = await ctx.claims.find_by_owner(
        partner, ids, SectionType.ZERO_TOUCH, after, page_size(req.page_size)
    )
    token = next_token("findDevicesByOwner", devices[-1].id if devices else None, more)
    return _ok(wire.FindDevicesResponse(await _devices_out(ctx, partner, devices), total, token, {}))


@router.post(f"{PREFIX}/findDevicesByDeviceIdentifier", name="reseller_find_devices_by_identifier")
async def find_devices_by_identifier(request: Request) -> Response:
    ctx, partner, req = await _begin(request, wire.FindDevicesByDeviceIdentifierRequest)
    identifier = search_identifier(req.device_identifier)
    if identifier is None:
        raise ResellerError(
            400, ErrorCode.INVALID_IDENTIFIER_SET, "deviceIdentifier names no field to search by"
        )
    after = token_in("findDevicesByDeviceIdentifier", req.page_token)
    devices, total, more = await ctx.claims.find_by_identifier(
        partner, identifier, after, page_size(req.page_size)
    )
    token = next_token("findDevicesByDeviceIdentifier", devices[-1].id if devices else None, more)
    return _ok(wire.FindDevicesResponse(await _devices_out(ctx, partner, devices), total, token, {}))


@router.get(DOCUMENT.path, name="reseller_openapi")
async def openapi_document(request: Request) -> Response:
    """The API's OpenAPI document, for any partner (a bad token: 403 AUTHORIZATION_FAIL, as everywhere)."""
    await context(request).claims.authenticate(bearer_token(request))
    return document_response(DOCUMENT)


DIALECT = Dialect("reseller", (router,), POLICY, owns_path=owns_path, document=DOCUMENT)
