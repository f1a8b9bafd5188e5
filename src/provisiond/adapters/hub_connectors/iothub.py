"""Azure IoT Hub's registry REST API (api-version 2021-04-12), as a hub connector.

The contract is shared/reference/ISSUANCE_HUBS_EVENTS.md §2: every call carries a service SAS
for the hub (``sr`` = the URL-encoded, lower-case host name, ``skn`` = the policy), signed with
the policy key of the connection string. Create-or-update is idempotent with only RegistryWrite:
``PUT /devices/{id}`` without ``If-Match`` creates; a 409 ``DeviceAlreadyExists`` means the device
exists, and the same body is PUT again with ``If-Match: "*"``, replacing it (so a second run,
after a crash say, updates instead of duplicating). Twins are merged with ``PATCH /twins/{id}``
and ``If-Match: "*"`` (ServiceConnect). A 429 raises ``HubThrottled`` (the service retries); any
other refusal, or a hub that cannot be reached, raises ``HubRefused`` with the hub's error body
as it answered it, which the device is shown (DPS does the same, §2.8).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import httpx

from provisiond.domain.hub_identities import (
    HubAuthKind,
    HubConnection,
    HubIdentity,
    HubRefused,
    HubThrottled,
    TwinPatch,
    parse_iothub_connection_string,
    twin_patch,
)
from provisiond.domain.sas import sign

__all__ = ["API_VERSION", "IotHubConnector", "device_body", "hub_error", "service_sas"]

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

API_VERSION = "2021-04-12"
_TOKEN_TTL = 300  # a token per call: a leaked one is worth minutes, not an hour (review, low)
_TIMEOUT = 15.0
_DEADLINE = 20.0  # one call, connect to last byte: a hub that trickles cannot hold a task (finding 5)
_ERROR_LIMIT = 1024  # bytes of an error body read: it is shown to devices (finding 5)
_OK_LIMIT = 1 << 20  # a twin or statistics body
_SAS = re.compile(r"SharedAccessSignature(?:\s+[^\s\"]+)?|\bsig=[^&\s\"]*", re.IGNORECASE)


def service_sas(host_name: str, key_name: str, key: str, expiry: int) -> str:
    """A service SAS for the hub: ``sr`` is the lower-case host name, URL-encoded (§2.2)."""
    resource = urllib.parse.quote(host_name.lower(), safe="")
    sig = urllib.parse.quote(sign(key, resource, str(expiry)), safe="")
    return f"SharedAccessSignature sr={resource}&sig={sig}&se={expiry}&skn={urllib.parse.quote(key_name)}"


def device_body(identity: HubIdentity) -> dict[str, Any]:
    """The ``Device`` a PUT sends: every updatable field, since a PUT update resets the ones it
    leaves out (§2.3)."""
    auth = identity.authentication
    authentication: dict[str, Any] = {"type": auth.kind.value}
    if auth.kind is HubAuthKind.SAS:
        authentication["symmetricKey"] = {"primaryKey": auth.primary, "secondaryKey": auth.secondary}
    elif auth.kind is HubAuthKind.SELF_SIGNED:
        authentication["x509Thumbprint"] = {
            "primaryThumbprint": auth.primary,
            "secondaryThumbprint": auth.secondary,
        }
    return {
        "deviceId": identity.device_id,
        "status": "enabled",
        "authentication": authentication,
        "capabilities": {"iotEdge": identity.iot_edge},
    }


def _guarded(
    call: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Any failure the port does not name (a TLS context that cannot load, a URL httpx rejects, a
    body that is not JSON) becomes ``HubRefused``: otherwise it escapes the service and leaves a
    registration ``assigning`` for ever (review finding 2). Logged with the exception type and
    text, which carry the URL or the CA error, never the connection string."""

    @functools.wraps(call)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except (HubRefused, HubThrottled):
            raise
        except Exception as exc:  # the port promises only HubRefused and HubThrottled
            log.warning("the IoT Hub connector failed unexpectedly: %s: %s", type(exc).__name__, exc)
            raise HubRefused(f"the hub could not be called: {type(exc).__name__}") from exc

    return guarded


class IotHubConnector:
    """One IoT hub's registry, reached at its host name or at the connection's ``endpoint``."""

    def __init__(
        self,
        connection: HubConnection,
        transport: httpx.AsyncBaseTransport | None = None,
        deadline: float = _DEADLINE,
    ) -> None:
        self._deadline = deadline
        parsed = parse_iothub_connection_string(connection.secret)
        self._host = parsed.host_name
        self._key_name = parsed.key_name
        self._key = parsed.key
        self._base = (connection.endpoint or f"https://{parsed.host_name}").rstrip("/")
        self._ca_pem = connection.ca_pem
        # Built once, at the first call (inside the guard): loading a trust store takes ~18 ms of
        # blocking work, too much per request (review finding 7). ``--ca-file`` replaces the
        # system trust store for this hub; without it, certifi's bundle, as httpx uses.
        self._verify: ssl.SSLContext | None = None
        self._transport = transport

    @_guarded
    async def put_identity(self, identity: HubIdentity) -> None:
        body = device_body(identity)
        path = f"/devices/{_quote(identity.device_id)}"
        answer = await self._send("PUT", path, body)
        if answer.status_code == 409:  # it exists: replace it (the SDKs' force update)
            answer = await self._send("PUT", path, body, if_match='"*"')
        _raise_for(answer)

    @_guarded
    async def patch_twin(self, device_id: str, patch: TwinPatch) -> None:
        body: dict[str, Any] = {}
        if patch.tags:
            body["tags"] = patch.tags
        if patch.desired:
            body["properties"] = {"desired": patch.desired}
        _raise_for(await self._send("PATCH", f"/twins/{_quote(device_id)}", body, if_match='"*"'))

    @_guarded
    async def read_twin(self, device_id: str) -> TwinPatch | None:
        answer = await self._send("GET", f"/twins/{_quote(device_id)}")
        if answer.status_code == 404:
            return None
        _raise_for(answer)
        twin = answer.json()
        return twin_patch(twin if isinstance(twin, dict) else None)

    @_guarded
    async def delete_identity(self, device_id: str) -> bool:
        answer = await self._send("DELETE", f"/devices/{_quote(device_id)}", if_match='"*"')
        if answer.status_code == 404:
            return False
        _raise_for(answer)
        return True

    @_guarded
    async def check(self) -> str:
        """Prove the rights provisioning needs with calls that change nothing (review finding 9):
        RegistryWrite by deleting, and ServiceConnect by reading the twin of, a random device id
        no hub has (a 404 ``DeviceNotFound`` proves the right, a 401 its lack); then the device
        count (``GET /statistics/devices``, RegistryRead: shown when the policy has it)."""
        probe = f"/provisiond-check-{uuid.uuid4().hex}"
        for method, path, right in (
            ("DELETE", f"/devices{probe}", "RegistryWrite"),
            ("GET", f"/twins{probe}", "ServiceConnect"),
        ):
            answer = await self._send(method, path, if_match='"*"' if method == "DELETE" else None)
            if answer.status_code != 404 or b"DeviceNotFound" not in answer.content:
                _raise_for(answer)
                raise HubRefused(f"HTTP {answer.status_code} from the hub where {right} was checked")
        stats = await self._send("GET", "/statistics/devices")
        parsed = stats.json() if stats.is_success else None
        total = parsed.get("totalDeviceCount") if isinstance(parsed, dict) else "an unknown number of"
        return f"{self._host}: RegistryWrite and ServiceConnect accepted, {total} device(s) registered"

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, if_match: str | None = None
    ) -> httpx.Response:
        headers = {
            "Authorization": service_sas(
                self._host, self._key_name, self._key, int(time.time()) + _TOKEN_TTL
            ),
            "Request-Id": str(uuid.uuid4()),
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if if_match is not None:
            headers["If-Match"] = if_match
        url = f"{self._base}{path}"
        if self._verify is None:
            self._verify = (
                ssl.create_default_context(cadata=self._ca_pem)
                if self._ca_pem
                else httpx.create_ssl_context(trust_env=False)
            )
        try:
            return await asyncio.wait_for(self._exchange(method, url, body, headers), self._deadline)
        except TimeoutError as exc:
            raise HubRefused(f"the hub {self._host} did not answer within {self._deadline:g} s") from exc
        except httpx.HTTPError as exc:
            raise HubRefused(f"the hub {self._host} could not be reached: {type(exc).__name__}") from exc

    async def _exchange(
        self, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> httpx.Response:
        """The answer with its body read only up to a bound (an error body is shown to devices)."""
        async with (
            httpx.AsyncClient(
                verify=self._verify or False, transport=self._transport, timeout=_TIMEOUT, trust_env=False
            ) as client,
            client.stream(
                method, url, params={"api-version": API_VERSION}, json=body, headers=headers
            ) as answer,
        ):
            limit = _OK_LIMIT if answer.is_success else _ERROR_LIMIT
            data = bytearray()
            async for chunk in answer.aiter_bytes():
                data += chunk
                if len(data) >= limit:
                    break
            kept = {k: v for k, v in answer.headers.items() if k.lower() in ("retry-after", "content-type")}
            return httpx.Response(answer.status_code, headers=kept, content=bytes(data[:limit]))


def hub_error(status: int, content: bytes) -> str:
    """What a device is shown of a hub's error (review finding 5): only IoT Hub's documented shape
    (§2.6, ``Message`` and ``ExceptionMessage``, each bounded, any SAS token blanked), else
    ``HTTP <status> from the hub``: a proxy's page or a hostile body is never passed on."""
    try:
        parsed = json.loads(content)
    except ValueError:  # not JSON, or cut at the read bound
        parsed = None
    message = parsed.get("Message") if isinstance(parsed, dict) else None
    if not isinstance(message, str):
        return f"HTTP {status} from the hub"
    shown = {"Message": _SAS.sub("SharedAccessSignature…", message)[:512]}
    detail = parsed.get("ExceptionMessage") if isinstance(parsed, dict) else None
    if isinstance(detail, str):
        shown["ExceptionMessage"] = _SAS.sub("SharedAccessSignature…", detail)[:512]
    return json.dumps(shown)


def _quote(device_id: str) -> str:
    return urllib.parse.quote(device_id, safe="")


def _raise_for(answer: httpx.Response) -> None:
    """Nothing for a 2xx; ``HubThrottled`` for a 429; else ``HubRefused`` with the hub's error."""
    if 200 <= answer.status_code < 300:
        return
    body = hub_error(answer.status_code, answer.content)
    if answer.status_code == 429:
        retry = answer.headers.get("retry-after")
        raise HubThrottled(body, float(retry) if retry and retry.replace(".", "", 1).isdigit() else None)
    raise HubRefused(body, answer.status_code)
