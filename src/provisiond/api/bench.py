"""Baseline routes for the registration benchmark, mounted only with ``bench_endpoints``.

They go through the same app, middleware (TLS front, client-certificate extension, path
normalisation) and route class as the device API, and answer constant JSON without touching the
database, so "registrations / baseline" isolates the cost of the registration logic itself.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisiond.api.dps_device.errors import POLICY
from provisiond.api.dps_wire import check_api_version
from provisiond.api.edge import Dialect
from provisiond.api.http import json_response

__all__ = ["DIALECT", "router"]

router = APIRouter(route_class=POLICY.route_class)


@router.put("/{id_scope}/registrations/{registration_id}/bench-register")
async def bench_register(id_scope: str, registration_id: str, request: Request) -> Response:
    check_api_version(request)
    await request.body()
    return json_response({"operationId": "4.bench", "status": "assigning"}, 202, headers={"Retry-After": "0"})


@router.get("/{id_scope}/registrations/{registration_id}/bench-operations/{operation_id}")
async def bench_operation(
    id_scope: str, registration_id: str, operation_id: str, request: Request
) -> Response:
    check_api_version(request)
    return json_response(
        {
            "operationId": operation_id,
            "status": "assigned",
            "registrationState": {
                "registrationId": registration_id,
                "status": "assigned",
                "assignedHub": "hub.example",
                "deviceId": registration_id,
            },
        }
    )


@router.post("/bench/echo")
async def bench_echo(request: Request) -> Response:
    """Baseline of keep-alive service calls: reads the body, answers a constant bulk result."""
    await request.body()
    return json_response({"isSuccessful": True, "errors": []})


DIALECT = Dialect("bench", (router,), POLICY, enabled=lambda settings: settings.bench_endpoints)
