"""A contract double of Azure IoT Hub's registry REST API, over real HTTPS, for tests.

No IoT Hub can run here, so this stands in for one. It follows the contract written down in
shared/reference/ISSUANCE_HUBS_EVENTS.md §2 (IoT Hub registry REST), not provisiond's code:

* §2.1 only ``api-version=2021-04-12`` is served (400 ``InvalidProtocolVersion`` otherwise);
* §2.2 every call needs a service SAS for the hub: ``sr`` the URL-encoded lower-case host name,
  HMAC-SHA256 of ``sr + "\\n" + se`` under the policy key, unexpired, ``skn`` a known policy with
  the right the call needs (RegistryWrite: PUT/DELETE devices; RegistryRead: GET devices and
  statistics; ServiceConnect: twins), else 401 ``IotHubUnauthorizedAccess``;
* §2.3 ``PUT /devices/{id}``: no ``If-Match`` creates (409 ``DeviceAlreadyExists`` if it exists),
  ``If-Match`` ``"*"`` or the etag replaces (404 ``DeviceNotFound`` if missing, 412 on a wrong
  etag); the body is checked (deviceId, one authentication type, keys 16-64 bytes of base64,
  thumbprints of 40 or 64 hex digits of one length); empty sas keys are generated;
* §2.4 ``DELETE /devices/{id}`` answers 204 (404, 412); §2.5 ``GET``/``PATCH /twins/{id}`` merge
  tags and desired properties (``null`` removes), If-Match ``"*"`` or the twin etag;
* §2.6 errors in the classic body ``{"Message": "ErrorCode:Name;text", "ExceptionMessage":
  "Tracking ID:…"}`` with the ``iothub-errorcode`` header; §2.7 throttling is a 429
  ``ThrottlingException``, set up with ``throttle``; ``refuse`` makes the next calls fail.

``tests/compat/test_iothub_service_sdk.py`` drives the official ``azure-iot-hub`` service SDK
against this double, to show that it answers as IoT Hub does.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["API_VERSION", "Fault", "IotHubDouble", "serve_iothub"]

API_VERSION = "2021-04-12"
ALL_RIGHTS = frozenset({"RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"})
_THUMBPRINT = re.compile(r"^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$")


@dataclass
class Fault:
    """An answer the double gives instead of serving: ``times`` calls matching ``method``."""

    status: int
    code: str
    message: str
    times: int = 1
    method: str | None = None
    retry_after: str | None = None
    raw: str | None = None  # a body not from the hub (a proxy's page in front of it), sent as text
    trickle: float = 0.0  # seconds between body bytes: a hub (or path) that answers slowly


@dataclass
class IotHubDouble:
    """The hub's state (devices, twins, policies), what it was asked, and faults to inject."""

    host_name: str
    policies: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    twins: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    endpoint: str = ""
    ca_pem: str = ""
    ca_path: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_policy(self, name: str, rights: set[str] | frozenset[str] = ALL_RIGHTS) -> str:
        """A shared access policy; its connection string (HostName is the hub's host name)."""
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.policies[name] = (key, frozenset(rights))
        return f"HostName={self.host_name};SharedAccessKeyName={name};SharedAccessKey={key}"

    def refuse(
        self,
        status: int,
        code: str,
        message: str,
        *,
        times: int = 1,
        method: str | None = None,
        raw: str | None = None,
    ) -> None:
        self.faults.append(Fault(status, code, message, times, method, raw=raw))

    def trickle(self, seconds_per_byte: float, *, times: int = 1) -> None:
        """The next answers send their body a byte at a time, ``seconds_per_byte`` apart."""
        self.faults.append(Fault(503, "ServerError", "slow", times, raw="x" * 64, trickle=seconds_per_byte))

    def throttle(self, times: int, retry_after: str | None = None) -> None:
        self.faults.append(
            Fault(
                429, "ThrottlingException", "IotHub throttling: too many requests", times, None, retry_after
            )
        )

    def calls(self, method: str | None = None) -> list[tuple[str, str, dict[str, str], Any]]:
        return [r for r in self.requests if method is None or r[0] == method]

    # --- serving -----------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """One request: (status, headers, JSON body or None)."""
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        path = urllib.parse.unquote(url.path)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                return _error(400, "IotHubFormatError", "the body is not JSON")
        with self.lock:
            self.requests.append((method, path, headers, body))
            if query.get("api-version") != [API_VERSION]:
                return _error(
                    400, "InvalidProtocolVersion", f"api-version {query.get('api-version')} is not served"
                )
            denied = self._authorize(method, path, headers.get("authorization", ""))
            if denied:
                return _error(401, "IotHubUnauthorizedAccess", denied)
            for fault in self.faults:
                if fault.times > 0 and (fault.method is None or fault.method == method):
                    fault.times -= 1
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    if fault.trickle:
                        extra = {**extra, "X-Double-Trickle": str(fault.trickle)}
                    if fault.raw is not None:
                        return fault.status, extra, fault.raw.encode()
                    status, hdrs, err = _error(fault.status, fault.code, fault.message)
                    return status, {**hdrs, **extra}, err
            return self._serve(method, path, headers.get("if-match"), body)

    def _authorize(self, method: str, path: str, header: str) -> str | None:
        if not header.startswith("SharedAccessSignature "):
            return "Unauthorized"
        fields = dict(
            part.split("=", 1) for part in header[len("SharedAccessSignature ") :].split("&") if "=" in part
        )
        sr, sig, se, skn = (fields.get(k, "") for k in ("sr", "sig", "se", "skn"))
        if urllib.parse.unquote(sr).lower() != self.host_name.lower():
            return "Unauthorized: sr is not this hub"
        if not se.isdigit() or int(se) < time.time():
            return "Unauthorized: the token has expired"
        policy = self.policies.get(urllib.parse.unquote(skn))
        if policy is None:
            return "Unauthorized: unknown policy"
        key, rights = policy
        expected = base64.b64encode(
            hmac.new(base64.b64decode(key), f"{sr}\n{se}".encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(expected, urllib.parse.unquote(sig)):
            return "Unauthorized: signature mismatch"
        needed = _right_for(method, path)
        if needed not in rights:
            return f"Unauthorized: the policy lacks {needed}"
        return None

    def _serve(
        self, method: str, path: str, if_match: str | None, body: Any
    ) -> tuple[int, dict[str, str], Any]:
        parts = path.strip("/").split("/")
        if parts == ["statistics", "devices"] and method == "GET":
            n = len(self.devices)
            return 200, {}, {"totalDeviceCount": n, "enabledDeviceCount": n, "disabledDeviceCount": 0}
        if len(parts) != 2 or parts[0] not in ("devices", "twins"):
            return _error(404, "ResourceNotFound", f"no route {method} {path}")
        device_id = parts[1]
        if parts[0] == "devices":
            if method == "PUT":
                return self._put_device(device_id, if_match, body)
            if method == "GET":
                found = self.devices.get(device_id)
                return (200, _etag(found), found) if found else _not_found(device_id)
            if method == "DELETE":
                return self._delete_device(device_id, if_match)
        elif method == "GET":
            twin = self.twins.get(device_id)
            return (200, _etag(twin), twin) if twin else _not_found(device_id)
        elif method == "PATCH":
            return self._patch_twin(device_id, if_match, body)
        return _error(405, "MethodNotAllowed", f"{method} {path}")

    def _put_device(self, device_id: str, if_match: str | None, body: Any) -> tuple[int, dict[str, str], Any]:
        problem = _check_device(device_id, body)
        if problem:
            return _error(400, "ArgumentInvalid", problem)
        current = self.devices.get(device_id)
        if if_match is None and current is not None:
            return _error(
                409, "DeviceAlreadyExists", f"A device with ID '{device_id}' is already registered."
            )
        if if_match is not None and current is None:
            return _not_found(device_id)
        if if_match is not None and current is not None and not _matches(if_match, current["etag"]):
            return _error(
                412, "PreconditionFailed", f"Precondition failed: the etag of '{device_id}' differs"
            )
        device = copy.deepcopy(body)
        auth = device["authentication"]
        if auth["type"] == "sas":
            keys = auth.setdefault("symmetricKey", {})
            for name in ("primaryKey", "secondaryKey"):
                keys[name] = keys.get(name) or base64.b64encode(secrets.token_bytes(32)).decode()
        device.update(
            etag=_new_etag(),
            generationId=current["generationId"] if current else str(uuid.uuid4().int)[:18],
            connectionState="Disconnected",
            cloudToDeviceMessageCount=0,
            statusUpdatedTime="0001-01-01T00:00:00Z",
        )
        device.setdefault("capabilities", {"iotEdge": False})
        self.devices[device_id] = device
        twin = self.twins.get(device_id) or {
            "deviceId": device_id,
            "etag": _new_etag(),
            "deviceEtag": device["etag"],
            "version": 1,
            "tags": {},
            "properties": {"desired": {"$version": 1}, "reported": {"$version": 1}},
        }
        twin.update(
            status=device.get("status", "enabled"),
            authenticationType=auth["type"],
            x509Thumbprint=auth.get("x509Thumbprint")
            or {"primaryThumbprint": None, "secondaryThumbprint": None},
            capabilities=device["capabilities"],
        )
        self.twins[device_id] = twin
        return 200, _etag(device), device

    def _delete_device(self, device_id: str, if_match: str | None) -> tuple[int, dict[str, str], Any]:
        current = self.devices.get(device_id)
        if current is None:
            return _not_found(device_id)
        if if_match is not None and not _matches(if_match, current["etag"]):
            return _error(
                412, "PreconditionFailed", f"Precondition failed: the etag of '{device_id}' differs"
            )
        del self.devices[device_id]
        self.twins.pop(device_id, None)
        return 204, {}, None

    def _patch_twin(self, device_id: str, if_match: str | None, body: Any) -> tuple[int, dict[str, str], Any]:
        twin = self.twins.get(device_id)
        if twin is None:
            return _not_found(device_id)
        if if_match is not None and not _matches(if_match, twin["etag"]):
            return _error(
                412, "PreconditionFailed", f"Precondition failed: the twin etag of '{device_id}' differs"
            )
        if not isinstance(body, dict):
            return _error(400, "ArgumentInvalid", "a twin patch is a JSON object")
        if isinstance(body.get("tags"), dict):
            _merge(twin["tags"], body["tags"])
        desired = (body.get("properties") or {}).get("desired")
        if isinstance(desired, dict):
            _merge(twin["properties"]["desired"], desired)
            twin["properties"]["desired"]["$version"] += 1
        twin["version"] += 1
        twin["etag"] = _new_etag()
        return 200, _etag(twin), twin


def _right_for(method: str, path: str) -> str:
    if path.startswith("/twins/"):
        return "ServiceConnect"
    if path.startswith("/devices/") and method in ("PUT", "DELETE"):
        return "RegistryWrite"
    return "RegistryRead"


def _check_device(device_id: str, body: Any) -> str | None:
    """What a hub would refuse in a ``Device`` body (§2.3), or ``None``."""
    if not isinstance(body, dict):
        return "the body is not a Device object"
    if body.get("deviceId") != device_id:
        return f"deviceId {body.get('deviceId')!r} does not match the path's {device_id!r}"
    auth = body.get("authentication")
    if not isinstance(auth, dict) or auth.get("type") not in (
        "sas",
        "selfSigned",
        "certificateAuthority",
        "none",
    ):
        return "authentication.type is one of sas, selfSigned, certificateAuthority, none"
    keys = auth.get("symmetricKey") or {}
    thumbs = auth.get("x509Thumbprint") or {}
    if any(keys.values()) and any(thumbs.values()):
        return "a device cannot have both symmetric keys and X.509 thumbprints"
    if auth["type"] == "sas":
        for name in ("primaryKey", "secondaryKey"):
            value = keys.get(name)
            if value:
                try:
                    size = len(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    return f"{name} is not base64"
                if not 16 <= size <= 64:
                    return f"{name} must be 16 to 64 bytes"
    if auth["type"] == "selfSigned":
        primary, secondary = thumbs.get("primaryThumbprint"), thumbs.get("secondaryThumbprint")
        if not primary or not _THUMBPRINT.match(primary):
            return "primaryThumbprint must be 40 or 64 hex digits"
        if secondary and (not _THUMBPRINT.match(secondary) or len(secondary) != len(primary)):
            return "secondaryThumbprint must be hex of the primary's length"
    caps = body.get("capabilities")
    if caps is not None and not isinstance(caps.get("iotEdge", False), bool):
        return "capabilities.iotEdge is a boolean"
    return None


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _new_etag() -> str:
    return base64.b64encode(secrets.token_bytes(6)).decode()


def _matches(if_match: str, etag: str) -> bool:
    value = if_match.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') in ("*", etag)


def _etag(entity: dict[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{entity["etag"]}"'}


def _not_found(device_id: str) -> tuple[int, dict[str, str], Any]:
    return _error(404, "DeviceNotFound", device_id)


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], Any]:
    """The classic registry error body (§2.6) and the ``iothub-errorcode`` header."""
    stamp = datetime.now(UTC).strftime("%m/%d/%Y %H:%M:%S")
    body = {
        "Message": f"ErrorCode:{code};{message}",
        "ExceptionMessage": f"Tracking ID:{uuid.uuid4().hex}-G:0-TimeStamp:{stamp}",
    }
    return status, {"iothub-errorcode": code}, body


def _tls(directory: Path) -> tuple[ssl.SSLContext, str, Path]:
    """A CA and a server certificate for localhost/127.0.0.1; the server context, CA PEM, its path."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "IoT Hub contract double CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    cert_path, key_path, ca_path = directory / "hub.pem", directory / "hub.key", directory / "hub-ca.pem"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ca_path.write_text(ca_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, ca_pem, ca_path


@contextmanager
def serve_iothub(directory: Path, host_name: str = "contoso-hub.azure-devices.net") -> Iterator[IotHubDouble]:
    """The double on a free local port over HTTPS (its CA in ``directory``); ``host_name`` is the
    hub name its SAS tokens are for (the connection strings' HostName), ``endpoint`` where it is."""
    hub = IotHubDouble(host_name)
    context, hub.ca_pem, hub.ca_path = _tls(directory)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or "0")
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = hub.handle(self.command, self.path, headers, raw)
            raw_body = isinstance(body, bytes)
            data = body if raw_body else json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            if body is not None:
                kind = "text/html" if raw_body else "application/json; charset=utf-8"
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            trickle = float(extra.get("X-Double-Trickle", "0"))
            if not trickle:
                self.wfile.write(data)
                return
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            except OSError:  # the client gave up: what the trickle is for
                return

        do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _any

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    hub.endpoint = f"https://localhost:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Serve the double until killed (or ``--lifetime`` seconds), for docs/hubs.md's story.

    Writes into ``--dir``: ``hub-ca.pem`` (its CA), ``connection-string`` (a policy with every
    right) and, last, ``endpoint`` (its URL), so a script can wait for that file.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="contoso-hub.azure-devices.net")
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with serve_iothub(args.dir, args.host) as hub:
        (args.dir / "connection-string").write_text(hub.add_policy("provisioning") + "\n")
        (args.dir / "endpoint").write_text(hub.endpoint + "\n")
        time.sleep(args.lifetime)


if __name__ == "__main__":
    main()
