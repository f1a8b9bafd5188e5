"""DPS device registration over HTTP (in-process, both engines): symmetric keys, allocation, refusals."""

from __future__ import annotations

import urllib.parse

import pytest

from provisiond.services.hubs import HubService
from tests.api.conftest import DpsApi
from tests.api.dps_device.conftest import KEY, KEY2, Device, enroll, enroll_group, group_device


@pytest.fixture
async def hubs(dps: DpsApi) -> list[str]:
    names = ["hub-a.example", "hub-b.example"]
    for name in names:
        await HubService(dps.db).add(name)
    return names


async def test_register_answers_202_assigning_with_retry_after_and_location(
    dps: DpsApi, hubs: list[str]
) -> None:
    await enroll(dps, "dev-1")
    r = await Device(dps, "dev-1", KEY).register()
    assert r.status_code == 202 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "assigning" and body["operationId"]
    assert set(body["operationId"]) <= set("0123456789abcdef.")
    assert r.headers["retry-after"] == "1"
    assert r.headers["location"].endswith(f"/operations/{body['operationId']}")


async def test_individual_device_is_assigned_with_the_enrollments_device_id(
    dps: DpsApi, hubs: list[str]
) -> None:
    await enroll(dps, "dev-1", deviceId="device-one", iotHubs=["hub-b.example"])
    result = await Device(dps, "dev-1", KEY).run({"model": "x"})
    assert result["status"] == "assigned"
    state = result["registrationState"]
    assert (state["assignedHub"], state["deviceId"], state["substatus"], state["status"]) == (
        "hub-b.example",
        "device-one",
        "initialAssignment",
        "assigned",
    )
    assert "symmetricKey" not in state and state["etag"].startswith('"')


async def test_secondary_key_registers_too(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    assert (await Device(dps, "dev-1", KEY2).run())["status"] == "assigned"


async def test_group_member_registers_with_its_derived_key(dps: DpsApi, hubs: list[str]) -> None:
    await enroll_group(dps, "group-1")
    result = await group_device(dps, "member-7").run()
    state = result["registrationState"]
    assert result["status"] == "assigned" and state["deviceId"] == "member-7"
    assert state["symmetricKey"] == {"enrollmentGroupId": "group-1"}
    assert (await group_device(dps, "member-8", KEY2).run())["status"] == "assigned"


async def test_individual_enrollment_wins_over_a_group(dps: DpsApi, hubs: list[str]) -> None:
    await enroll_group(dps, "group-1", iotHubs=["hub-a.example"])
    derived = group_device(dps, "dev-1").key
    await enroll(dps, "dev-1", key=derived, iotHubs=["hub-b.example"])
    state = (await Device(dps, "dev-1", derived).run())["registrationState"]
    assert state["assignedHub"] == "hub-b.example" and "symmetricKey" not in state


@pytest.mark.parametrize(
    "resource",
    ["{scope}/registrations/{rid}", "{scope}%2fregistrations%2f{rid}", "{scope}%2Fregistrations%2F{rid}"],
)
@pytest.mark.parametrize("key_name", ["registration", None])
async def test_sr_raw_or_encoded_and_skn_optional(
    dps: DpsApi, hubs: list[str], resource: str, key_name: str | None
) -> None:
    await enroll(dps, "dev-1")
    device = Device(dps, "dev-1", KEY)
    token = device.token(resource=resource.format(scope=dps.init.id_scope, rid="dev-1"), key_name=key_name)
    r = await device.register(token=token)
    assert r.status_code == 202, r.text


async def test_polling_before_retry_after_is_429_and_then_allowed(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    device = Device(dps, "dev-1", KEY)
    op = (await device.register()).json()["operationId"]
    early = await device.poll(op)
    assert early.status_code == 429 and early.headers["retry-after"] == "1"
    assert early.json()["errorCode"] == 429001
    dps.clock.advance(1)
    assert (await device.poll(op)).status_code == 200


async def test_an_operation_is_still_answered_after_a_restart(
    dps: DpsApi, hubs: list[str], tmp_path: object
) -> None:
    from tests.api.conftest import running_app

    await enroll(dps, "dev-1")
    op = (await Device(dps, "dev-1", KEY).register()).json()["operationId"]
    dps.clock.advance(1)
    async with running_app(dps.db, dps.init.data_dir, dps.clock) as restarted:
        r = await Device(restarted, "dev-1", KEY).poll(op)
    assert r.status_code == 200 and r.json()["registrationState"]["assignedHub"] in hubs


async def test_status_lookup_returns_the_latest_state(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    device = Device(dps, "dev-1", KEY)
    before = await dps.http.post(
        f"/{dps.init.id_scope}/registrations/dev-1",
        params={"api-version": "2019-03-31"},
        json={"registrationId": "dev-1"},
        headers={"Authorization": device.token()},
    )
    assert before.status_code == 404 and before.json()["errorCode"] == 404201
    await device.run()
    r = await dps.http.post(
        f"/{dps.init.id_scope}/registrations/dev-1",
        params={"api-version": "2019-03-31"},
        json={"registrationId": "dev-1"},
        headers={"Authorization": device.token()},
    )
    assert r.status_code == 200 and r.json()["status"] == "assigned" and r.json()["registrationId"] == "dev-1"


async def test_states_are_visible_queryable_and_deletable_through_the_service_api(
    dps: DpsApi, hubs: list[str]
) -> None:
    await enroll(dps, "dev-1")
    await enroll_group(dps, "group-1")
    await Device(dps, "dev-1", KEY).run()
    for n in range(3):
        await group_device(dps, f"member-{n}").run()
    embedded = (await dps.call("GET", "/enrollments/dev-1")).json()["registrationState"]
    assert embedded["status"] == "assigned" and embedded["registrationId"] == "dev-1"
    r = await dps.call(
        "POST", "/registrations/group-1/query", json={"query": "*"}, headers={"x-ms-max-item-count": "2"}
    )
    assert [s["registrationId"] for s in r.json()] == ["member-0", "member-1"] and r.headers[
        "x-ms-continuation"
    ]
    r2 = await dps.call(
        "POST",
        "/registrations/group-1/query",
        json={"query": "*"},
        headers={"x-ms-max-item-count": "2", "x-ms-continuation": r.headers["x-ms-continuation"]},
    )
    assert [s["registrationId"] for s in r2.json()] == ["member-2"] and "x-ms-continuation" not in r2.headers
    state = (await dps.call("GET", "/registrations/member-0")).json()
    assert state["assignedHub"] in hubs and state["status"] == "assigned"
    stale = await dps.call("DELETE", "/registrations/member-0", headers={"If-Match": '"old"'})
    assert stale.status_code == 412
    assert (
        await dps.call("DELETE", "/registrations/member-0", headers={"If-Match": state["etag"]})
    ).status_code == 204
    assert (await dps.call("GET", "/registrations/member-0")).status_code == 404


# -- refusals ---------------------------------------------------------------------------------


async def test_wrong_key_is_401(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    r = await Device(dps, "dev-1", "Zm9yZ2VkZm9yZ2VkZm9yZ2VkZm9yZ2VkZm9yZ2VkMTI=").register()
    assert r.status_code == 401 and r.json()["errorCode"] == 401000


async def test_expired_token_is_401(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    device = Device(dps, "dev-1", KEY)
    token = device.token(ttl=10)
    dps.clock.advance(11)
    assert (await device.register(token=token)).status_code == 401


async def test_token_for_another_registration_is_401(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    await enroll(dps, "dev-2")
    device = Device(dps, "dev-1", KEY)
    other = device.token(resource=f"{dps.init.id_scope}/registrations/dev-2")
    assert (await device.register(token=other)).status_code == 401


async def test_missing_token_is_401(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    r = await dps.http.put(
        f"/{dps.init.id_scope}/registrations/dev-1/register", params={"api-version": "2019-03-31"}, json={}
    )
    assert r.status_code == 401


async def test_wrong_id_scope_is_404(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    r = await Device(dps, "dev-1", KEY, scope="0ne00000000").register()
    assert r.status_code == 404 and r.json()["errorCode"] == 404001


async def test_unknown_registration_id_is_404(dps: DpsApi, hubs: list[str]) -> None:
    r = await Device(dps, "nobody", KEY).register()
    assert r.status_code == 404 and r.json()["errorCode"] == 404201


async def test_unknown_operation_is_404(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    r = await Device(dps, "dev-1", KEY).poll("4.0000.0000")
    assert r.status_code == 404 and r.json()["errorCode"] == 404201


@pytest.mark.parametrize("kind", ["individual", "group"])
async def test_disabled_enrollment_ends_failed_with_state_disabled(
    dps: DpsApi, hubs: list[str], kind: str
) -> None:
    if kind == "individual":
        await enroll(dps, "dev-1", provisioningStatus="disabled")
        device = Device(dps, "dev-1", KEY)
    else:
        await enroll_group(dps, "group-1", provisioningStatus="disabled")
        device = group_device(dps, "dev-1")
    result = await device.run()
    assert result["status"] == "failed"
    state = result["registrationState"]
    assert state["status"] == "disabled" and state["errorCode"] == 401006 and "assignedHub" not in state
    assert (await dps.call("GET", "/registrations/dev-1")).json()["status"] == "disabled"


async def test_no_linked_hub_fails_the_registration(dps: DpsApi) -> None:
    await enroll(dps, "dev-1")
    result = await Device(dps, "dev-1", KEY).run()
    assert result["status"] == "failed" and result["registrationState"]["errorCode"] == 400206


async def test_both_dps_apis_show_a_failed_registration_with_the_same_error_code(dps: DpsApi) -> None:
    """The device sees the code in its registrationState; an operator sees it in the state's GET."""
    await enroll(dps, "dev-1")
    device_view = (await Device(dps, "dev-1", KEY).run())["registrationState"]
    service_view = (await dps.call("GET", "/registrations/dev-1")).json()
    assert device_view["errorCode"] == service_view["errorCode"] == 400206
    assert device_view["errorMessage"] == service_view["errorMessage"]


async def test_bad_register_bodies_and_api_versions(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev-1")
    device = Device(dps, "dev-1", KEY)
    path = f"/{dps.init.id_scope}/registrations/dev-1/register"
    headers = {"Authorization": device.token(), "Content-Type": "application/json"}
    cases = [(b"{bad", 400001), (b'{"registrationId": "dev-2"}', 400201), (b"[1]", 400201)]
    for content, code in cases:
        r = await dps.http.put(path, params={"api-version": "2019-03-31"}, content=content, headers=headers)
        assert (r.status_code, r.json()["errorCode"]) == (400, code)
    r = await dps.http.put(path, params={"api-version": "1999-01-01"}, json={}, headers=headers)
    assert (r.status_code, r.json()["errorCode"]) == (400, 400002)
    r = await dps.http.put(
        path, params={"api-version": "2019-03-31"}, content=b" " * (97 * 1024), headers=headers
    )
    assert (r.status_code, r.json()["errorCode"]) == (413, 413000)


async def test_paths_are_case_insensitive_and_ids_percent_decoded(dps: DpsApi, hubs: list[str]) -> None:
    await enroll(dps, "dev:1")
    device = Device(dps, "dev:1", KEY)
    r = await dps.http.put(
        f"/{dps.init.id_scope}/Registrations/{urllib.parse.quote('dev:1', safe='')}/REGISTER",
        params={"api-version": "2019-03-31"},
        json={},
        headers={"Authorization": device.token()},
    )
    assert r.status_code == 202, r.text
