"""What a Mosquitto hub's connector holds: the broker's TLS address and its admin account.

Kept in the domain, apart from the adapter, so the operator's command can check them before
anything is written (``services/hub_connections.py``) and the adapter can read them back: the
admin account is stored as one JSON text, the connection's sealed secret; the broker's
``mqtts://HOST:PORT`` is the connection's endpoint (only TLS: the admin password must not cross
the network in the clear).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

from provisiond.errors import InvalidInput

__all__ = ["MosquittoSecret", "mosquitto_secret", "parse_broker_url", "parse_mosquitto_secret"]


@dataclass(frozen=True, slots=True)
class MosquittoSecret:
    """The broker's admin account the connector logs in with."""

    user: str
    password: str

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"MosquittoSecret(user={self.user!r})"


def mosquitto_secret(user: str, password: str) -> str:
    """The text stored (sealed) as the connection's secret; ``InvalidInput`` if a part is empty."""
    if not user.strip() or not password.strip():
        raise InvalidInput("the mosquitto connector needs --admin-user and --admin-password-file")
    return json.dumps({"adminUser": user.strip(), "adminPassword": password.strip()})


def parse_mosquitto_secret(text: str) -> MosquittoSecret:
    """The admin account from a stored secret; ``InvalidInput`` if it is not one (never echoed)."""
    try:
        data = json.loads(text)
        return MosquittoSecret(str(data["adminUser"]), str(data["adminPassword"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("the mosquitto connector's secret is not an admin account") from None


def parse_broker_url(url: str) -> tuple[str, int]:
    """Host and port of ``mqtts://HOST:PORT`` (8883 by default); ``InvalidInput`` otherwise."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port or 8883
    except ValueError:
        raise InvalidInput("--broker is an mqtts://HOST:PORT URL") from None
    if parts.scheme != "mqtts" or not parts.hostname:
        raise InvalidInput("--broker is an mqtts://HOST:PORT URL (the admin login goes over TLS)")
    return parts.hostname, port
