"""Shared access signature (SAS) tokens for calling provisiond's DPS APIs with curl.

Python standard library only, so it runs with any ``python3`` (3.8+), no virtualenv needed.
docs/quickstart.md uses it; the format is Azure DPS's, so the tokens work against DPS too.

Service API (enrollments, registration states): a token for a shared access policy, made from the
connection string ``provisiond init --json`` prints as ``serviceConnectionString``::

    python3 examples/dps_sas.py service "$CONNECTION_STRING"
    SharedAccessSignature sr=localhost%3A8443&sig=…&se=1767225600&skn=provisioningserviceowner

Device API (``PUT /{idScope}/registrations/{registrationId}/register``): a token signed with the
device's symmetric key, or with the key derived from an enrollment group's key::

    python3 examples/dps_sas.py device "$ID_SCOPE" dev-1 --key "$DEVICE_KEY"
    python3 examples/dps_sas.py device "$ID_SCOPE" dev-7 --group-key "$GROUP_KEY"
    python3 examples/dps_sas.py derive-key dev-7 --group-key "$GROUP_KEY"   # the device key itself

A token is ``SharedAccessSignature sr=<url-encoded resource>&sig=<url-encoded signature>&se=<expiry>``
(``&skn=<policy name>`` for a service token), where the signature is the base64 HMAC-SHA256, under
the base64-decoded key, of ``<url-encoded resource> + "\\n" + <expiry>``. The service resource is
the host name of the service (with or without the port); the device resource is
``{idScope}/registrations/{registrationId}``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import time
import urllib.parse

__all__ = ["derive_device_key", "device_token", "parse_connection_string", "sas_token", "service_token"]

DEFAULT_TTL = 3600


def sas_token(resource: str, key_b64: str, *, ttl: int = DEFAULT_TTL, policy: str | None = None) -> str:
    """A SAS token for ``resource``, valid for ``ttl`` seconds, signed with the base64 key ``key_b64``."""
    encoded = urllib.parse.quote(resource, safe="")
    expiry = int(time.time()) + ttl
    to_sign = f"{encoded}\n{expiry}".encode()
    digest = hmac.new(base64.b64decode(key_b64), to_sign, hashlib.sha256).digest()
    signature = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
    token = f"SharedAccessSignature sr={encoded}&sig={signature}&se={expiry}"
    return f"{token}&skn={urllib.parse.quote(policy, safe='')}" if policy else token


def parse_connection_string(connection_string: str) -> dict[str, str]:
    """``HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`` as a dict (the key keeps its ``=`` padding)."""
    fields = dict(part.split("=", 1) for part in connection_string.strip().split(";") if part)
    missing = {"HostName", "SharedAccessKeyName", "SharedAccessKey"} - fields.keys()
    if missing:
        raise ValueError(f"the connection string lacks {', '.join(sorted(missing))}")
    return fields


def service_token(connection_string: str, *, ttl: int = DEFAULT_TTL) -> str:
    """The ``Authorization`` value for the DPS service API, for the policy the connection string names."""
    fields = parse_connection_string(connection_string)
    return sas_token(
        fields["HostName"], fields["SharedAccessKey"], ttl=ttl, policy=fields["SharedAccessKeyName"]
    )


def derive_device_key(group_key_b64: str, registration_id: str) -> str:
    """The key a member of a symmetric-key enrollment group signs with:
    base64(HMAC-SHA256(base64-decoded group key, registration id))."""
    digest = hmac.new(base64.b64decode(group_key_b64), registration_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def device_token(id_scope: str, registration_id: str, device_key_b64: str, *, ttl: int = DEFAULT_TTL) -> str:
    """The ``Authorization`` value for a device registering with a symmetric key."""
    return sas_token(f"{id_scope}/registrations/{registration_id}", device_key_b64, ttl=ttl)


def main(argv: list[str] | None = None) -> None:
    """The command line: print one token (or a derived key) on stdout."""
    parser = argparse.ArgumentParser(
        description="SAS tokens for provisiond's DPS APIs (see the module docstring)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    service = commands.add_parser("service", help="a service API token from a connection string")
    service.add_argument("connection_string")
    device = commands.add_parser("device", help="a device registration token")
    device.add_argument("id_scope")
    device.add_argument("registration_id")
    derive = commands.add_parser("derive-key", help="the key a member of an enrollment group signs with")
    derive.add_argument("registration_id")
    for sub in (device, derive):
        keys = sub.add_mutually_exclusive_group(required=True)
        if sub is device:
            keys.add_argument("--key", help="the device's own symmetric key (base64)")
        keys.add_argument("--group-key", help="the enrollment group's symmetric key (base64)")
    for sub in (service, device):
        sub.add_argument(
            "--ttl", type=int, default=DEFAULT_TTL, help="seconds the token is valid (default 3600)"
        )
    args = parser.parse_args(argv)

    if args.command == "service":
        print(service_token(args.connection_string, ttl=args.ttl))
    elif args.command == "derive-key":
        print(derive_device_key(args.group_key, args.registration_id))
    else:
        key = args.key or derive_device_key(args.group_key, args.registration_id)
        print(device_token(args.id_scope, args.registration_id, key, ttl=args.ttl))


if __name__ == "__main__":
    main()
