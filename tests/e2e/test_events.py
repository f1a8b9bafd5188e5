"""Event webhooks through real processes: ``provisiond serve`` posting signed CloudEvents to a
real local HTTPS receiver (trusted through ``PROVISIOND_WEBHOOK_CA_FILE``) that verifies every
signature with the official ``standardwebhooks`` library.

Delivery is at least once with a stable ``webhook-id``: the receiver may see an event twice
(after a kill -9 between its answer and the outbox delete) and deduplicates on the id, so the
crash test checks the unique events, in order per subject; where nothing crashed, counts are exact.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.events import new_secret
from tests.compat.support import link_hub, service_request, unique_id
from tests.support.databases import own_database
from tests.support.event_receiver import Receiver, serve_receiver
from tests.support.server import ServerProcess, start_server

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
SETTINGS = {"webhook_timeout": 3}


def start(tmp: Path, receiver: Receiver, **kwargs: Any) -> ServerProcess:
    env = {"PROVISIOND_WEBHOOK_CA_FILE": str(receiver.ca_file)}
    return start_server(tmp / "data", settings=SETTINGS, env=env, **kwargs)


def subscribe(server: ServerProcess, url: str, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(server.cli("events", "subscribe", url, "--json", *args).stdout)
    return out


def enroll(server: ServerProcess, rid: str, hub: str, status: str = "enabled") -> None:
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        "iotHubs": [hub],
        "provisioningStatus": status,
    }
    r = service_request(server, "PUT", f"/enrollments/{rid}", json=body, headers={"If-Match": "*"})
    assert r.status_code == 200, r.text


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def of(receiver: Receiver, subject: str) -> list[str]:
    return [
        e["type"].rsplit(".", 2)[-2] + "." + e["type"].rsplit(".", 1)[-1]
        for e in receiver.unique()
        if e["subject"] == subject
    ]


def test_events_arrive_signed_as_cloudevents_after_a_receiver_fails_its_first_attempts(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    with serve_receiver(tmp_path, secret, fail_first=2) as receiver:
        server = start(tmp_path, receiver)
        try:
            hub = link_hub(server, "events")
            sub = subscribe(server, receiver.url, "--secret-file", str(secret_file))
            assert set(sub) == {"id"}  # no secret printed: the operator gave it
            listed = json.loads(server.cli("events", "list", "--json").stdout)
            assert secret not in json.dumps(listed) and listed["subscriptions"][0]["url"] == receiver.url
            rid = unique_id("ev")
            enroll(server, rid, hub)
            server.register_device(rid, KEY)
            wait_for(
                lambda: of(receiver, rid) == ["enrollment.created", "registration.assigned"], "two events"
            )
            created, assigned = receiver.unique()
            assert (
                created["specversion"] == "1.0" and created["source"] == f"/provisiond/dps/{server.id_scope}"
            )
            assert created["datacontenttype"] == "application/json"
            assert assigned["type"] == "io.provisiond.dps.registration.assigned"
            assert assigned["data"]["assignedHub"] == hub and assigned["data"]["registrationId"] == rid
            assert receiver.attempts[created["id"]] == 3 and receiver.attempts[assigned["id"]] == 3
            assert receiver.rejected == 0
            assert [h["webhook-id"] for h in receiver.headers] == [created["id"], assigned["id"]]
            assert all(h["content-type"].startswith("application/cloudevents+json") for h in receiver.headers)
            assert KEY not in json.dumps(receiver.events) and secret not in json.dumps(receiver.events)
        finally:
            server.stop()


def test_a_generated_secret_is_shown_once_and_signs_the_deliveries_and_types_filter_by_prefix(
    tmp_path: Path,
) -> None:
    with serve_receiver(tmp_path, "whsec_" + "A" * 32) as receiver:
        server = start(tmp_path, receiver)
        try:
            hub = link_hub(server, "events")
            groups = subscribe(
                server, receiver.url + "?sub=enrollments", "--types", "io.provisiond.dps.enrollment.*"
            )
            assert set(groups) == {"id", "secret"} and groups["secret"].startswith("whsec_")
            receiver.secret = groups["secret"]  # the one secret the receiver verifies with
            assert groups["secret"] not in server.cli("events", "list").stdout
            refused = server.cli("events", "subscribe", receiver.url, "--types", "io.nothing.*", check=False)
            assert refused.returncode == 1 and "no event type" in refused.stderr
            rid, device = unique_id("ev"), unique_id("ev")
            enroll(server, device, hub)
            server.register_device(
                device, KEY
            )  # its registration.assigned is not an enrollment event: filtered out
            enroll(server, rid, hub)
            enroll(server, rid, hub, status="disabled")
            assert service_request(server, "DELETE", f"/enrollments/{rid}").status_code == 204
            wait_for(lambda: len(of(receiver, rid)) == 3, "three enrollment events")
            time.sleep(2)
            assert of(receiver, rid) == ["enrollment.created", "enrollment.updated", "enrollment.deleted"]
            assert of(receiver, device) == ["enrollment.created"]
            assert receiver.rejected == 0
            server.cli("events", "remove", groups["id"])
            assert json.loads(server.cli("events", "list", "--json").stdout) == {"subscriptions": []}
            gone = server.cli("events", "remove", groups["id"], check=False)
            assert gone.returncode == 1
        finally:
            server.stop()


def test_events_queued_while_the_receiver_fails_survive_a_kill_9_and_arrive_in_order(tmp_path: Path) -> None:
    secret = new_secret()
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    with serve_receiver(tmp_path, secret, fail_first=10_000) as receiver:
        server = start(tmp_path, receiver)
        hub = link_hub(server, "events")
        subscribe(server, receiver.url, "--secret-file", str(secret_file))
        rids = [unique_id("ev") for _ in range(3)]
        for rid in rids:
            enroll(server, rid, hub)
            server.register_device(rid, KEY)
            enroll(server, rid, hub, status="disabled")
        wait_for(lambda: len(receiver.attempts) >= 3, "first attempts")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        assert receiver.events == []
        receiver.fail_first = 0
        server = start(tmp_path, receiver)
        try:
            for rid in rids:
                wait_for(lambda rid=rid: len(of(receiver, rid)) == 3, f"the events of {rid}")
                assert of(receiver, rid) == [
                    "enrollment.created",
                    "registration.assigned",
                    "enrollment.updated",
                ]
            assert receiver.rejected == 0
        finally:
            server.stop()


@pytest.mark.parametrize("engine", ["postgresql"])
def test_two_serve_processes_on_postgresql_deliver_each_event_once(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    secret = new_secret()
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    with (
        own_database(engine, tmp_path, request.getfixturevalue("pg_url")) as url,
        serve_receiver(tmp_path, secret) as receiver,
    ):
        server = start(tmp_path, receiver, database=url, serve_args=["--processes", "2"])
        try:
            hub = link_hub(server, "events")
            subscribe(server, receiver.url, "--secret-file", str(secret_file))
            rids = [unique_id("ev") for _ in range(10)]
            for rid in rids:
                enroll(server, rid, hub)
                server.register_device(rid, KEY)
            wait_for(lambda: len(receiver.unique()) == 20, "twenty events")
            time.sleep(3)  # a second delivery, if any, would come now
            assert len(receiver.events) == 20 and set(receiver.attempts.values()) == {1}
            for rid in rids:
                assert of(receiver, rid) == ["enrollment.created", "registration.assigned"]
        finally:
            server.stop()
