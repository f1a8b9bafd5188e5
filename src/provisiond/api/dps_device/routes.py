"""DPS device routes over HTTPS: register, poll the operation, look up the status."""

from __future__ import annotations

import ssl
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisiond.api.context import context
from provisiond.api.dps_common import check_api_version
from provisiond.api.dps_device.mapping import operation_out, registration_state_out
from provisiond.api.dps_device.routing import DeviceRoute
from provisiond.api.http import json_response, read_json
from provisiond.domain.registrations import OperationStatus
from provisiond.errors import InvalidInput
from provisiond.services.registration import Credentials

__all__ = ["MAX_BODY", "router"]

MAX_BODY = 96 * 1024

router = APIRouter(route_class=DeviceRoute)


def _registration_body(body: Any, registration_id: str) -> Any:
    """The device's ``payload`` from a DeviceRegistration body (which may be absent or ``{}``)."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a DeviceRegistration JSON object")
    named = body.get("registrationId")
    if named is not None and (not isinstance(named, str) or named.lower() != registration_id.lower()):
        raise InvalidInput("registrationId in the body differs from the one in the path")
    return body.get("payload")


def _credentials(request: Request) -> Credentials:
    """The SAS header and the client certificate chain (from the ASGI TLS extension)."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tuple(ssl.PEM_cert_to_DER_cert(pem) for pem in tls.get("client_cert_chain") or ())
    return Credentials(request.headers.get("authorization"), chain, tls.get("client_cert_error"))


def _retry_headers(seconds: int, location: str | None = None) -> dict[str, str]:
    headers = {"Retry-After": str(seconds)}
    if location:
        headers["Location"] = location
    return headers


@router.put("/{id_scope}/registrations/{registration_id}/register", name="device_register")
async def register(id_scope: str, registration_id: str, request: Request) -> Response:
    check_api_version(request)
    ctx = context(request)
    payload = _registration_body(await read_json(request, MAX_BODY), registration_id)
    client = request.client.host if request.client else None
    op = await ctx.registrations.register(id_scope, registration_id, _credentials(request), payload, client)
    location = f"/{id_scope}/registrations/{registration_id}/operations/{op.operation_id}"
    body = {"operationId": op.operation_id, "status": OperationStatus.ASSIGNING.value}
    return json_response(body, 202, headers=_retry_headers(ctx.registrations.settings.retry_after, location))


@router.get("/{id_scope}/registrations/{registration_id}/operations/{operation_id}", name="device_operation")
async def operation(id_scope: str, registration_id: str, operation_id: str, request: Request) -> Response:
    check_api_version(request)
    ctx = context(request)  # the Node SDK sends a "{}" body on this GET: it is ignored
    op = await ctx.registrations.operation(id_scope, registration_id, operation_id, _credentials(request))
    if op.status is OperationStatus.ASSIGNING:
        retry = ctx.registrations.settings.retry_after
        return json_response(operation_out(op), 202, headers=_retry_headers(retry))
    return json_response(operation_out(op))


@router.post("/{id_scope}/registrations/{registration_id}", name="device_status")
async def status(id_scope: str, registration_id: str, request: Request) -> Response:
    check_api_version(request)
    ctx = context(request)
    _registration_body(await read_json(request, MAX_BODY), registration_id)
    state = await ctx.registrations.status(id_scope, registration_id, _credentials(request))
    return json_response(registration_state_out(state))
