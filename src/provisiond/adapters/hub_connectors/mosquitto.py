"""A Mosquitto broker's dynamic-security plugin, as a hub connector.

The connector logs in as the broker's admin account on a TLS listener (``mqtts://``) and speaks
the plugin's API (shared/reference/HUBS.md): commands published to ``$CONTROL/dynamic-security/v1``,
answers read from ``…/v1/response`` in request order, each command carrying its own
``correlationData`` so answers meant for another admin client are ignored.

Per device it keeps one role, ``device-{deviceId}``, that allows exactly the device's topics,
named as Azure IoT Hub names them so device code does not change (publish
``devices/{id}/messages/events/#``, subscribe and receive ``devices/{id}/messages/devicebound/#``;
twins and direct methods are IoT Hub services a plain broker does not answer), and one client
holding it, named for the identity the broker sees: the certificate's CN, which is the
registration id, on a listener with ``require_certificate`` and ``use_identity_as_username``.
The client has no password: the broker admits it by its certificate, and a password would be one
more secret to keep. A device with no certificate the broker can verify (a SAS credential) is
refused here, with a message the device sees saying what to change.

Create-or-update is idempotent: the old client and role are deleted (a "not found" is fine) and
recreated in the same request, so a second run after a crash leaves one client, one role.
Deleting the client drops the device's live session; note that Mosquitto 2.0.11 still lets a
deleted certificate identity CONNECT (its ACLs then refuse everything); a CRL keeps it out of the
handshake (docs/hubs.md).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from provisiond.domain.hub_identities import (
    HubAuthKind,
    HubConnection,
    HubIdentity,
    HubRefused,
    TwinPatch,
)
from provisiond.domain.mosquitto_hubs import parse_broker_url, parse_mosquitto_secret
from provisiond.errors import InvalidInput

__all__ = ["CONTROL_TOPIC", "MARK", "MosquittoConnector", "device_acls", "role_name"]

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
_TIMEOUT = 15.0


def role_name(device_id: str) -> str:
    """The device's role in dynamic security (one per device)."""
    return f"device-{device_id}"


#: The text name of every client and role provisiond creates: what it may replace or delete.
MARK = "provisioned by provisiond"


def device_acls(device_id: str) -> list[dict[str, Any]]:
    """Exactly the device's own topics, with IoT Hub's names (everything else is the broker's
    default: denied)."""
    events = f"devices/{device_id}/messages/events/#"
    bound = f"devices/{device_id}/messages/devicebound/#"
    return [
        {"acltype": "publishClientSend", "topic": events, "priority": 0, "allow": True},
        {"acltype": "subscribePattern", "topic": bound, "priority": 0, "allow": True},
        {"acltype": "publishClientReceive", "topic": bound, "priority": 0, "allow": True},
    ]


class MosquittoConnector:
    """One broker's dynamic security, reached as its admin over TLS."""

    def __init__(self, connection: HubConnection) -> None:
        self._hub = connection.host_name
        try:
            self._host, self._port = parse_broker_url(connection.endpoint or "")
            self._secret = parse_mosquitto_secret(connection.secret)
        except InvalidInput as exc:  # the factory's contract: InvalidInput for what it cannot serve
            raise InvalidInput(f"the hub {self._hub}'s connector is unusable: {exc.message}") from None
        self._ca_pem = connection.ca_pem

    async def put_identity(self, identity: HubIdentity) -> None:
        if identity.authentication.kind is HubAuthKind.SAS:
            raise HubRefused(
                f"the hub {self._hub} is a Mosquitto broker, which admits devices by an X.509 "
                "certificate; this device has none: add a credential policy to the enrollment so "
                "that a certificate is issued at registration"
            )
        role = role_name(identity.device_id)
        username = identity.registration_id or identity.device_id
        await self._refuse_foreign(username, role)
        answers = await self._commands(
            [
                {"command": "deleteClient", "username": username},
                {"command": "deleteRole", "rolename": role},
                {
                    "command": "createRole",
                    "rolename": role,
                    "textname": f"{MARK} for {identity.device_id}",
                    "acls": device_acls(identity.device_id),
                },
                {
                    "command": "createClient",
                    "username": username,
                    "textname": f"{MARK} as {identity.device_id}",
                    "roles": [{"rolename": role, "priority": 0}],
                },
            ]
        )
        for answer in answers[2:]:
            _raise_if_error(answer, self._hub)

    async def _refuse_foreign(self, username: str, role: str) -> None:
        """Replace only what provisiond made. The device listener takes the certificate's CN as
        the username and skips passwords, so a device named like the admin or a back-end account
        would otherwise be given that account's rights, or delete it."""
        if username == self._secret.user:
            raise HubRefused(f"the broker of {self._hub}: {username!r} is the admin account's name")
        client, existing_role = await self._commands(
            [{"command": "getClient", "username": username}, {"command": "getRole", "rolename": role}]
        )
        for answer, key, name in ((client, "client", username), (existing_role, "role", role)):
            found = (answer.get("data") or {}).get(key) if "error" not in answer else None
            if isinstance(found, dict) and not str(found.get("textname") or "").startswith(MARK):
                raise HubRefused(
                    f"the broker of {self._hub} has a {key} {name!r} that provisiond did not make: "
                    "it is left alone (rename that account, or this device)"
                )

    async def patch_twin(self, device_id: str, patch: TwinPatch) -> None:
        """A broker has no twins: nothing to apply (docs/hubs.md says so)."""

    async def read_twin(self, device_id: str) -> TwinPatch | None:
        """A broker has no twins to migrate."""
        return None

    async def delete_identity(self, device_id: str) -> bool:
        """Delete every client holding the device's role (which drops its live session), then the
        role; ``False`` when the broker knew neither."""
        role = role_name(device_id)
        listed, existing_role = await self._commands(
            [{"command": "listClients", "verbose": True}, {"command": "getRole", "rolename": role}]
        )
        _raise_if_error(listed, self._hub)
        found = (existing_role.get("data") or {}).get("role") if "error" not in existing_role else None
        if isinstance(found, dict) and not str(found.get("textname") or "").startswith(MARK):
            raise HubRefused(f"the broker of {self._hub} has a role {role!r} that provisiond did not make")
        clients = (listed.get("data") or {}).get("clients") or []
        holders = [
            c["username"]
            for c in clients
            if isinstance(c, dict)
            and str(c.get("textname") or "").startswith(MARK)  # never an account provisiond did not make
            and any(r.get("rolename") == role for r in c.get("roles") or [])
        ]
        commands: list[dict[str, Any]] = [{"command": "deleteClient", "username": u} for u in holders]
        commands.append({"command": "deleteRole", "rolename": role})
        answers = await self._commands(commands)
        for answer in answers[:-1]:
            _raise_if_error(answer, self._hub)
        role_deleted = "error" not in answers[-1]
        return bool(holders) or role_deleted

    async def check(self) -> str:
        """``listClients``: reads, changes nothing, needs the admin login and its ACLs."""
        (answer,) = await self._commands([{"command": "listClients"}])
        _raise_if_error(answer, self._hub)
        total = (answer.get("data") or {}).get("totalCount")
        where = f"{self._host}:{self._port}"
        return f"{self._hub}: admin login accepted by {where}, {total} client(s) in dynamic security"

    async def _commands(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send the commands in one request; their answers, in order (paho is a threaded client,
        so the exchange runs in a worker thread)."""
        return await asyncio.to_thread(self._exchange, commands)

    def _exchange(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        tag = uuid.uuid4().hex
        sent = [{**c, "correlationData": f"{tag}-{i}"} for i, c in enumerate(commands)]
        answers: dict[str, dict[str, Any]] = {}
        subscribed = threading.Event()
        done = threading.Event()
        failure: list[str] = []

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"provisiond-{tag[:12]}", protocol=mqtt.MQTTv311
        )
        client.username_pw_set(self._secret.user, self._secret.password)
        client.tls_set_context(ssl.create_default_context(cadata=self._ca_pem or None))

        def on_connect(c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
            if reason.is_failure:
                failure.append(f"the broker refused the admin login ({reason})")
                subscribed.set()
            else:
                c.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(_c: mqtt.Client, _u: object, _m: int, codes: Any, _p: object) -> None:
            if any(code.is_failure for code in codes):
                failure.append(f"the admin account may not read {RESPONSE_TOPIC}")
            subscribed.set()

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            try:
                body = json.loads(message.payload)
            except ValueError:
                return
            for answer in body.get("responses") or []:
                key = answer.get("correlationData") if isinstance(answer, dict) else None
                if isinstance(key, str) and key.startswith(tag):
                    answers[key] = answer
            if len(answers) == len(sent):
                done.set()

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
            if not done.is_set():  # dropped before every answer came: say so now, not at the timeout
                failure.append(f"the broker closed the admin connection ({reason})")
                subscribed.set()
                done.set()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self._host, self._port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise HubRefused(
                f"the broker of {self._hub} ({self._host}:{self._port}) could not be reached: {exc}"
            ) from exc
        client.loop_start()
        try:
            if subscribed.wait(_TIMEOUT) and not failure:
                client.publish(CONTROL_TOPIC, json.dumps({"commands": sent}), qos=1)
                done.wait(_TIMEOUT)
        finally:
            done.set()  # our own disconnect below is not a failure
            client.disconnect()
            client.loop_stop()
        if failure:
            raise HubRefused(f"{failure[0]} at {self._hub}")
        if len(answers) < len(sent):
            raise HubRefused(f"the broker of {self._hub} did not answer dynamic-security commands in time")
        return [answers[c["correlationData"]] for c in sent]


def _raise_if_error(answer: dict[str, Any], hub: str) -> None:
    """A command's error as the hub's refusal, naming the command and the broker's words."""
    if "error" in answer:
        raise HubRefused(f"the broker of {hub} refused {answer.get('command')}: {answer['error']}")
