"""The custom-allocation webhook call: DPS's AllocationRequest out, AllocationResponse back.

This implements the ``CustomAllocator`` port of ``services/custom_allocation.py``. The request
embeds the enrollment in the DPS service API's JSON, sanitised as DPS does it: the attestation
without keys and the webhook URL with its query (a function key) masked. That JSON is the
service dialect's to write, so the composition root hands its renderer in (``render_enrollment``)
rather than this adapter importing a dialect.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from provisiond import wirejson
from provisiond.domain.enrollments import Enrollment, EnrollmentKind
from provisiond.domain.registration_results import AllocationDecision, RegistrationError
from provisiond.domain.registrations import RegistrationFailure
from provisiond.domain.webhooks import redact_webhook_url
from provisiond.services.custom_allocation import CustomRequest

__all__ = ["HttpWebhookAllocator", "RenderEnrollment", "allocation_request"]

RenderEnrollment = Callable[[Enrollment], dict[str, Any]]
"""An enrollment as a new dict of the DPS service API's JSON (IndividualEnrollment or EnrollmentGroup)."""


def allocation_request(request: CustomRequest, render_enrollment: RenderEnrollment) -> dict[str, Any]:
    """The AllocationRequest body DPS posts to a custom allocation webhook (docs/devices.md)."""
    e = request.enrollment
    enrollment = render_enrollment(e)
    enrollment["attestation"] = {"type": e.attestation.type.value}
    if e.custom_allocation is not None:
        enrollment["customAllocationDefinition"]["webhookUrl"] = redact_webhook_url(
            e.custom_allocation.webhook_url
        )
    context: dict[str, Any] = {"registrationId": request.registration_id}
    if request.current_hub:
        context["currentIotHubHostName"] = request.current_hub
        context["currentDeviceId"] = request.current_device_id
    context[request.attestation_type] = {}
    if request.payload is not None:
        context["payload"] = request.payload
    key = "individualEnrollment" if e.kind is EnrollmentKind.INDIVIDUAL else "enrollmentGroup"
    return {key: enrollment, "deviceRuntimeContext": context, "linkedHubs": request.linked_hubs}


def _member(body: dict[str, Any], name: str) -> Any:
    """A member by case-insensitive name (one DPS doc spells ``iotHubHostname``)."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return None


class HttpWebhookAllocator:
    """POSTs the AllocationRequest with httpx; every failure becomes a RegistrationError."""

    def __init__(self, render_enrollment: RenderEnrollment, client: httpx.AsyncClient | None = None) -> None:
        self._render_enrollment = render_enrollment
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, request: CustomRequest, time_limit: float) -> AllocationDecision:
        custom = request.enrollment.custom_allocation
        assert custom is not None
        body = json.dumps(allocation_request(request, self._render_enrollment)).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
        try:
            answer = await self._client.post(
                custom.webhook_url, content=body, headers=headers, timeout=time_limit
            )
        except httpx.TimeoutException as exc:
            raise RegistrationError(
                RegistrationFailure.CUSTOM_FAILED,
                f"the allocation webhook did not answer within {time_limit:g} s",
            ) from exc
        except httpx.HTTPError as exc:
            raise RegistrationError(
                RegistrationFailure.CUSTOM_FAILED,
                f"the allocation webhook could not be reached: {type(exc).__name__}",
            ) from exc
        if answer.status_code == 401:
            raise RegistrationError(
                RegistrationFailure.CUSTOM_UNAUTHORIZED, "the allocation webhook answered 401 Unauthorized"
            )
        if not 200 <= answer.status_code < 300:
            raise RegistrationError(
                RegistrationFailure.CUSTOM_FAILED,
                f"the allocation webhook answered HTTP {answer.status_code}",
            )
        try:
            parsed = wirejson.decode(answer.content)  # whatever the Content-Type: some send text/plain
        except wirejson.MalformedJson as exc:
            raise RegistrationError(
                RegistrationFailure.CUSTOM_FAILED, "the allocation webhook's answer is not JSON"
            ) from exc
        if not isinstance(parsed, dict):
            raise RegistrationError(
                RegistrationFailure.CUSTOM_FAILED, "the allocation webhook's answer is not a JSON object"
            )
        hub = _member(parsed, "iotHubHostName")
        if not hub or not isinstance(hub, str):
            raise RegistrationError(
                RegistrationFailure.CUSTOM_NO_HUB, "the allocation webhook named no iotHubHostName"
            )
        twin = _member(parsed, "initialTwin")
        return AllocationDecision(
            hub=hub, initial_twin=twin if isinstance(twin, dict) else None, payload=_member(parsed, "payload")
        )
