"""DPS service routes: parse -> authorize -> service -> render, a few lines each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from provisiond.api.context import AppContext
from provisiond.api.dps_service import errors as codes
from provisiond.api.dps_service.auth import service_auth
from provisiond.api.dps_service.errors import POLICY, DpsError, dps_error_for
from provisiond.api.dps_service.mapping import (
    attestation_out,
    enrollment_from_wire,
    enrollment_out,
    state_out,
    validation_message,
    wire_id,
)
from provisiond.api.dps_service.openapi import DOCUMENT
from provisiond.api.dps_service.routing import canonical_path, is_dps_service_path
from provisiond.api.dps_service.schemas import BulkIn, QueryIn
from provisiond.api.dps_wire import check_api_version, issuance_version
from provisiond.api.edge import Dialect
from provisiond.api.http import json_response, read_json
from provisiond.api.openapi import document_response
from provisiond.domain.enrollments import Enrollment, EnrollmentKind
from provisiond.domain.policies import Right
from provisiond.domain.query import check_query, page_size
from provisiond.errors import InvalidInput, NotFound
from provisiond.services.enrollments import MAX_BULK_ITEMS, BulkMode, ItemRejected, Page

__all__ = ["DIALECT", "MAX_BODY", "router"]

MAX_BODY = 96 * 1024

router = APIRouter(route_class=POLICY.route_class)


async def _begin(request: Request, right: Right) -> AppContext:
    """Authenticate, then check the api-version: the checks every DPS route starts with."""
    auth = service_auth(request)
    await auth.authorize(request, right)
    check_api_version(request)
    return auth.ctx


def _issuance(request: Request) -> bool:
    """The request's api-version has ``credentialPolicyName`` (2025-07-01-preview)."""
    return issuance_version(request.query_params.get("api-version"))


async def _body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type.lower():
        raise DpsError(415, codes.UNSUPPORTED_MEDIA_TYPE, f"Content-Type {content_type!r} is not JSON")
    return await read_json(request, MAX_BODY)


def _page_response(page: Page[Any], item_type: str, render: Any) -> Response:
    headers = {"x-ms-item-type": item_type}
    if page.continuation is not None:
        headers["x-ms-continuation"] = page.continuation
    return json_response([render(item) for item in page.items], headers=headers)


def _add_enrollment_routes(kind: EnrollmentKind, collection: str, item_type: str, bulk_field: str) -> None:
    @router.get(f"/{collection}/{{eid}}", name=f"get_{kind.value}")
    async def get_one(eid: str, request: Request) -> Response:
        ctx = await _begin(request, Right.ENROLLMENT_READ)
        enrollment = await ctx.enrollments.get(kind, eid)
        state = await _state_of(ctx, enrollment)
        return json_response(enrollment_out(enrollment, state, issuance=_issuance(request)))

    @router.put(f"/{collection}/{{eid}}", name=f"put_{kind.value}")
    async def put_one(eid: str, request: Request) -> Response:
        ctx = await _begin(request, Right.ENROLLMENT_WRITE)
        issuance = _issuance(request)
        enrollment = enrollment_from_wire(kind, await _body(request), path_id=eid, issuance=issuance)
        stored = await ctx.enrollments.put(
            enrollment, request.headers.get("if-match"), keep_credential_policy=not issuance
        )
        return json_response(enrollment_out(stored, issuance=issuance))

    @router.delete(f"/{collection}/{{eid}}", name=f"delete_{kind.value}")
    async def delete_one(eid: str, request: Request) -> Response:
        ctx = await _begin(request, Right.ENROLLMENT_WRITE)
        await ctx.enrollments.delete(kind, eid, request.headers.get("if-match"))
        return Response(status_code=204)

    @router.post(f"/{collection}", name=f"bulk_{kind.value}")
    async def bulk(request: Request) -> Response:
        ctx = await _begin(request, Right.ENROLLMENT_WRITE)
        try:
            op = BulkIn.model_validate(await _body(request))
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc)) from exc
        raw_items = getattr(op, bulk_field)
        if raw_items is None:
            raise InvalidInput(f"{bulk_field} is required")
        if len(raw_items) > MAX_BULK_ITEMS:
            raise DpsError(
                400,
                codes.BULK_TOO_LARGE,
                f"a bulk operation holds at most {MAX_BULK_ITEMS} items, not {len(raw_items)}",
            )
        issuance = _issuance(request)
        items = [_bulk_item(kind, raw, issuance) for raw in raw_items]
        failures = await ctx.enrollments.bulk(
            kind, BulkMode(op.mode), items, keep_credential_policy=not issuance
        )
        errors = []
        for failure in failures:
            err = dps_error_for(failure.error)
            errors.append({kind.id_name: failure.id, "errorCode": err.code, "errorStatus": err.message})
        return json_response({"isSuccessful": not errors, "errors": errors})

    @router.post(f"/{collection}/query", name=f"query_{kind.value}")
    async def query(request: Request) -> Response:
        ctx = await _begin(request, Right.ENROLLMENT_READ)
        spec = await _body(request)
        try:
            check_query(QueryIn.model_validate(spec).query, collection)
        except ValidationError as exc:
            raise DpsError(400, codes.BAD_QUERY, validation_message(exc)) from exc
        except InvalidInput as exc:
            raise DpsError(400, codes.BAD_QUERY, exc.message) from exc
        page = await ctx.enrollments.page(
            kind,
            request.headers.get("x-ms-continuation"),
            page_size(request.headers.get("x-ms-max-item-count")),
        )
        issuance = _issuance(request)
        return _page_response(page, item_type, lambda e: enrollment_out(e, issuance=issuance))

    @router.post(f"/{collection}/{{eid}}/attestationmechanism", name=f"attestation_{kind.value}")
    async def attestation(eid: str, request: Request) -> Response:
        ctx = await _begin(request, Right.ENROLLMENT_READ)
        enrollment = await ctx.enrollments.get(kind, eid)
        return json_response(attestation_out(enrollment.attestation))


def _bulk_item(kind: EnrollmentKind, raw: object, issuance: bool) -> Enrollment | ItemRejected:
    try:
        return enrollment_from_wire(kind, raw, issuance=issuance)
    except InvalidInput as exc:
        return ItemRejected(wire_id(kind, raw), exc)


async def _state_of(ctx: AppContext, enrollment: Enrollment) -> Any:
    if enrollment.kind is not EnrollmentKind.INDIVIDUAL:
        return None
    try:
        return await ctx.registration_states.get(enrollment.id)
    except NotFound:
        return None


_add_enrollment_routes(EnrollmentKind.INDIVIDUAL, "enrollments", "Enrollment", "enrollments")
_add_enrollment_routes(EnrollmentKind.GROUP, "enrollmentGroups", "EnrollmentGroup", "enrollmentGroups")


@router.get("/registrations/{rid}", name="get_registration_state")
async def get_state(rid: str, request: Request) -> Response:
    ctx = await _begin(request, Right.REGISTRATION_STATUS_READ)
    try:
        return json_response(state_out(await ctx.registration_states.get(rid)))
    except NotFound as exc:
        raise DpsError(404, codes.REGISTRATION_NOT_FOUND, exc.message) from exc


@router.delete("/registrations/{rid}", name="delete_registration_state")
async def delete_state(rid: str, request: Request) -> Response:
    ctx = await _begin(request, Right.REGISTRATION_STATUS_WRITE)
    try:
        await ctx.registration_states.delete(rid, request.headers.get("if-match"))
    except NotFound as exc:
        raise DpsError(404, codes.REGISTRATION_NOT_FOUND, exc.message) from exc
    return Response(status_code=204)


@router.post("/registrations/{group_id}/query", name="query_registration_states")
async def query_states(group_id: str, request: Request) -> Response:
    ctx = await _begin(request, Right.REGISTRATION_STATUS_READ)
    await _body(
        request
    )  # QuerySpecification: sent by the SDKs, absent from the spec; only its shape is checked
    page = await ctx.registration_states.page_of_group(
        group_id,
        request.headers.get("x-ms-continuation"),
        page_size(request.headers.get("x-ms-max-item-count")),
    )
    return _page_response(page, "DeviceRegistration", state_out)


@router.get(DOCUMENT.path, name="dps_service_openapi")
async def openapi_document(request: Request) -> Response:
    """The API's OpenAPI document, for any valid service token (whatever its rights)."""
    await service_auth(request).authorize(request, None)
    return document_response(DOCUMENT)


DIALECT = Dialect(
    "dps_service",
    (router,),
    POLICY,
    owns_path=is_dps_service_path,
    canonical_path=canonical_path,
    document=DOCUMENT,
)
