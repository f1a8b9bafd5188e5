"""DPS device routes over HTTPS: register, poll the operation, look up the status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from provisiond.api.context import context
from provisiond.api.dps_device.device_requests import MAX_BODY, claimed_device, credentials
from provisiond.api.dps_device.errors import POLICY
from provisiond.api.dps_device.mapping import (
    challenge_answer,
    operation_answer,
    register_answer,
    registration_csr,
    registration_payload,
    registration_state_out,
    registration_tpm,
    status_lookup_body,
)
from provisiond.api.dps_device.mqtt.transports import serve_websocket
from provisiond.api.dps_device.openapi import DOCUMENT
from provisiond.api.dps_device.routing import canonical_path, is_dps_device_path
from provisiond.api.dps_wire import check_api_version, issuance_version
from provisiond.api.edge import Dialect
from provisiond.api.http import json_response, parse_json, read_body
from provisiond.api.openapi import document_response
from provisiond.errors import NotFound, Unauthorized
from provisiond.services.tpm_attestation import TpmChallenge

__all__ = ["DIALECT", "MAX_BODY", "router"]

router = APIRouter(route_class=POLICY.route_class)


def _retry_headers(seconds: int, location: str | None = None) -> dict[str, str]:
    headers = {"Retry-After": str(seconds)}
    if location:
        headers["Location"] = location
    return headers


@router.put("/{id_scope}/registrations/{registration_id}/register", name="device_register")
async def register(id_scope: str, registration_id: str, request: Request) -> Response:
    check_api_version(request)
    ctx = context(request)
    raw = await read_body(request, MAX_BODY)  # bounded; parsed only once the device is authenticated
    client = request.client.host if request.client else None
    parsed: list[Any] = []  # parsed once, by whichever reader the service calls first

    def parsed_body() -> Any:
        if not parsed:
            parsed.append(parse_json(raw))
        return parsed[0]

    issuance = issuance_version(request.query_params.get("api-version"))
    op = await ctx.registrations.register(
        id_scope,
        registration_id,
        credentials(request),
        lambda: registration_payload(parsed_body(), registration_id),
        client,
        read_tpm=lambda: registration_tpm(parsed_body()),
        read_csr=lambda: registration_csr(parsed_body(), issuance),
    )
    if isinstance(op, TpmChallenge):
        status, challenge = challenge_answer(op)
        return json_response(challenge, status)
    location = f"/{id_scope}/registrations/{registration_id}/operations/{op.operation_id}"
    status, body = register_answer(op)
    return json_response(
        body, status, headers=_retry_headers(ctx.registrations.settings.retry_after, location)
    )


@router.get("/{id_scope}/registrations/{registration_id}/operations/{operation_id}", name="device_operation")
async def operation(id_scope: str, registration_id: str, operation_id: str, request: Request) -> Response:
    check_api_version(request)
    ctx = context(request)  # the Node SDK sends a "{}" body on this GET: it is ignored
    op = await ctx.registrations.operation(id_scope, registration_id, operation_id, credentials(request))
    status, body = operation_answer(op)
    headers = _retry_headers(ctx.registrations.settings.retry_after) if status == 202 else None
    return json_response(body, status, headers=headers)


@router.post("/{id_scope}/registrations/{registration_id}", name="device_status")
async def status(id_scope: str, registration_id: str, request: Request) -> Response:
    check_api_version(request)
    ctx = context(request)
    body = await read_body(request, MAX_BODY)
    state = await ctx.registrations.status(id_scope, registration_id, credentials(request))
    issuance = issuance_version(request.query_params.get("api-version"))
    status_lookup_body(parse_json(body), registration_id, issuance)  # checked once the device is known
    return json_response(registration_state_out(state))


@router.get(DOCUMENT.path, name="dps_device_openapi")
async def openapi_document(request: Request) -> Response:
    """The API's OpenAPI document, for any device this service would let register: its SAS
    token (whose resource names it) or its client certificate, checked as a status lookup is."""
    ctx = context(request)
    instance = await ctx.instance.get()
    try:
        id_scope, registration_id, presented = claimed_device(request, instance.id_scope)
        await ctx.registrations.authenticate(id_scope, registration_id, presented)
    except (NotFound, Unauthorized) as exc:
        # One answer for every refusal: the document names no device, so it must not tell an
        # unknown scope, an unknown device and a bad signature apart (the register call does).
        raise Unauthorized("device authentication failed") from exc
    return document_response(DOCUMENT)


@router.websocket("/$iothub/websocket")
async def mqtt_over_websocket(websocket: WebSocket) -> None:
    """MQTT over WebSocket on the HTTPS port (subprotocol ``mqtt``)."""
    state = websocket.app.state
    await serve_websocket(websocket, state.ctx.registrations, state.mqtt_sessions)


# Its paths start with any segment (the id scope), so dialects with a fixed prefix come first.
DIALECT = Dialect(
    "dps_device",
    (router,),
    POLICY,
    owns_path=is_dps_device_path,
    pattern_paths=True,
    canonical_path=canonical_path,
    document=DOCUMENT,
)
