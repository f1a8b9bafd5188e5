"""A device that talks to the in-process app the way the Node HTTP SDK does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from provisiond.domain.sas import build_sas, derive_device_key
from tests.api.conftest import DpsApi

DEVICE_API = "2019-03-31"
KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
KEY2 = "cHJpbWFyeWtleXByaW1hcnlrZXlwcmltYXJ5a2V5MTI="


@dataclass
class Device:
    api: DpsApi
    registration_id: str
    key: str
    scope: str | None = None

    @property
    def id_scope(self) -> str:
        return self.scope or self.api.init.id_scope

    def token(
        self, *, ttl: int = 3600, resource: str | None = None, key_name: str | None = "registration"
    ) -> str:
        sr = resource or f"{self.id_scope}/registrations/{self.registration_id}"
        return build_sas(self.key, sr, int(self.api.clock().timestamp()) + ttl, key_name)

    async def register(self, payload: Any = None, *, token: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"registrationId": self.registration_id}
        if payload is not None:
            body["payload"] = payload
        return await self.api.http.put(
            f"/{self.id_scope}/registrations/{self.registration_id}/register",
            params={"api-version": DEVICE_API},
            json=body,
            headers={"Authorization": token or self.token()},
        )

    async def poll(self, operation_id: str, *, token: str | None = None) -> httpx.Response:
        return await self.api.http.get(
            f"/{self.id_scope}/registrations/{self.registration_id}/operations/{operation_id}",
            params={"api-version": DEVICE_API},
            headers={"Authorization": token or self.token()},
        )

    async def run(self, payload: Any = None) -> dict[str, Any]:
        """Register, then poll after each retry-after (moving the clock) until the status is final."""
        r = await self.register(payload)
        assert r.status_code == 202, r.text
        op = r.json()["operationId"]
        for _ in range(50):
            self.api.clock.advance(int(r.headers["retry-after"]))
            r = await self.poll(op)
            if r.status_code == 200:
                result: dict[str, Any] = r.json()
                return result
            assert r.status_code == 202, r.text
            await self.api.ctx.custom_allocations.drain()
        raise AssertionError("registration never finished")


def group_device(api: DpsApi, registration_id: str, group_key: str = KEY) -> Device:
    return Device(api, registration_id, derive_device_key(group_key, registration_id))


async def enroll(api: DpsApi, rid: str, key: str = KEY, **fields: Any) -> dict[str, Any]:
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": KEY2}},
        **fields,
    }
    r = await api.call("PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def enroll_group(api: DpsApi, gid: str, key: str = KEY, **fields: Any) -> dict[str, Any]:
    body = {
        "enrollmentGroupId": gid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": KEY2}},
        **fields,
    }
    r = await api.call("PUT", f"/enrollmentGroups/{gid}", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result
