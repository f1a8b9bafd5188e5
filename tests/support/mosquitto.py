"""A private Mosquitto broker with dynamic security, for tests of the ``mosquitto`` connector.

Debian's ``mosquitto`` (2.0.11; installed by ``.ci/system-deps``) on two free loopback ports:
an admin TLS listener (the dynamic-security admin logs in with a password) and a device TLS
listener that requires a client certificate, takes its CN as the username, trusts the CA file it
is given and checks the CRL file it is given. Never the system service. ``require_mosquitto()``
skips a test where the broker is absent, and fails it in CI (``PROVISIOND_TEST_REQUIRE_MOSQUITTO=1``,
set by ``.ci/run``), so the connector is never left untested there.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.pki import Issued, issue
from tests.support.server import free_port

__all__ = [
    "Broker",
    "MqttDevice",
    "crl_pem",
    "dynsec_plugin",
    "refused_at_handshake",
    "require_mosquitto",
    "start_broker",
]

ADMIN_USER = "admin@dps"  # an "@": no registration id (so no device CN) can take this name
ADMIN_PASSWORD = "admin-pw-7f3c9a"  # a throwaway broker's, per test


def dynsec_plugin() -> Path | None:
    """The dynamic-security plugin the mosquitto package ships, if it is installed."""
    for candidate in Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"):
        return candidate
    found = Path("/usr/lib/mosquitto_dynamic_security.so")
    return found if found.exists() else None


def require_mosquitto(clients: bool = False) -> Path:
    """The plugin path; skip without mosquitto (and, with ``clients``, mosquitto_pub and _sub, which
    docs/hubs.md runs), fail in CI where they must be installed."""
    plugin = dynsec_plugin()
    has_broker = shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()
    tools = ["mosquitto_ctrl", *(["mosquitto_pub", "mosquitto_sub"] if clients else [])]
    if has_broker and plugin is not None and all(shutil.which(t) for t in tools):
        return plugin
    message = f"mosquitto with its dynamic-security plugin and {', '.join(tools)} is not installed (.ci/system-deps)"
    if os.environ.get("PROVISIOND_TEST_REQUIRE_MOSQUITTO") == "1":
        pytest.fail(message)
    pytest.skip(message)


def crl_pem(ca: Issued, revoked: tuple[int, ...] = ()) -> str:
    """A CRL of ``ca`` (revoking ``revoked``): a broker with a ``crlfile`` needs one per issuer."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - timedelta(minutes=1))
        .next_update(now + timedelta(days=7))
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _server_cert(ca: Issued) -> Issued:
    """The broker's TLS certificate, for localhost and 127.0.0.1 (hostname checks need a SAN)."""
    leaf = issue("localhost", ca, client_auth=False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.cert.subject)
        .public_key(leaf.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    )
    return Issued(builder.sign(ca.key, hashes.SHA256()), leaf.key)


@dataclass
class Broker:
    """A running private broker: its ports, its TLS CA, its files, its process."""

    directory: Path
    admin_port: int
    device_port: int
    ca_path: Path  # the CA the broker's own TLS certificate chains to
    crl_path: Path
    proc: subprocess.Popen[bytes]

    @property
    def admin_url(self) -> str:
        return f"mqtts://localhost:{self.admin_port}"

    def reload(self, crl: str) -> None:
        """Write a new CRL file and have the broker reload it (SIGHUP), as docs/hubs.md says."""
        self.crl_path.write_text(crl)
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # the reload is asynchronous; nothing tells when it is done

    def ctrl(self, *args: str) -> str:
        """``mosquitto_ctrl dynsec …`` as the admin, over the admin TLS listener."""
        out = subprocess.run(
            ["mosquitto_ctrl", "-h", "localhost", "-p", str(self.admin_port), "--cafile", str(self.ca_path),
             "-u", ADMIN_USER, "-P", ADMIN_PASSWORD, "dynsec", *args],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        return out.stdout

    def grant_backend(self) -> None:
        """Let the admin account also send cloud-to-device messages, as a back end would."""
        self.ctrl("createRole", "backend")
        self.ctrl("addRoleACL", "backend", "publishClientSend", "devices/+/messages/devicebound/#", "allow")
        self.ctrl("addClientRole", ADMIN_USER, "backend")

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_broker(directory: Path, device_ca_pem: str, crl: str) -> Broker:
    """Start mosquitto in ``directory`` with a fresh dynamic-security file (admin ``ADMIN_USER``),
    trusting ``device_ca_pem`` for device certificates and checking ``crl``."""
    plugin = require_mosquitto()
    directory.mkdir(parents=True, exist_ok=True)
    ca = issue("test broker CA", ca=True)
    server_cert, server_key = _server_cert(ca).write(directory, "broker")
    ca_path = directory / "broker-ca.pem"
    ca_path.write_text(ca.pem)
    device_ca = directory / "device-ca.pem"
    device_ca.write_text(device_ca_pem)
    crl_path = directory / "crl.pem"
    crl_path.write_text(crl)
    dynsec = directory / "dynamic-security.json"
    subprocess.run(
        ["mosquitto_ctrl", "dynsec", "init", str(dynsec), ADMIN_USER, ADMIN_PASSWORD],
        check=True,
        capture_output=True,
    )
    admin_port, device_port = free_port(), free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"""per_listener_settings false
allow_anonymous false
user {getpass.getuser()}
persistence false
log_dest file {directory / "mosquitto.log"}
log_type all
plugin {plugin}
plugin_opt_config_file {dynsec}

listener {admin_port} 127.0.0.1
certfile {server_cert}
keyfile {server_key}

listener {device_port} 127.0.0.1
certfile {server_cert}
keyfile {server_key}
cafile {device_ca}
crlfile {crl_path}
require_certificate true
use_identity_as_username true
use_username_as_clientid true
"""
    )
    with (directory / "stderr.log").open("wb") as stderr:  # the child keeps its own copy
        proc = subprocess.Popen(
            [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    broker = Broker(directory, admin_port, device_port, ca_path, crl_path, proc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {(directory / 'stderr.log').read_text()} {broker.log()}")
        try:
            for port in (admin_port, device_port):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return broker
        except OSError:
            time.sleep(0.05)
    broker.stop()
    raise RuntimeError(f"mosquitto did not listen: {broker.log()}")


class MqttDevice:
    """A device (or a back end) on the broker over MQTT 5 with paho, so refusals show as reason
    codes: a forbidden publish gets PUBACK 135, a forbidden subscribe SUBACK 0x87."""

    def __init__(
        self,
        broker: Broker,
        client_id: str,
        cert: tuple[Path, Path] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: queue.Queue[tuple[int, list[int]]] = queue.Queue()
        self.disconnected = threading.Event()
        self.connack: queue.Queue[int] = queue.Queue()
        context = ssl.create_default_context(cafile=str(broker.ca_path))
        if cert is not None:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.tls_set_context(context)
        if login is not None:
            client.username_pw_set(*login)
        client.on_connect = lambda _c, _u, _f, reason, _p: self.connack.put(reason.value)
        client.on_disconnect = lambda _c, _u, _f, _r, _p: self.disconnected.set()
        client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        client.on_publish = lambda _c, _u, mid, reason, _p: self.acks.put((mid, [reason.value]))
        client.on_subscribe = lambda _c, _u, mid, codes, _p: self.acks.put((mid, [c.value for c in codes]))
        self.client = client
        port = broker.device_port if cert is not None else broker.admin_port
        client.connect("localhost", port, keepalive=30)  # raises ssl.SSLError on a refused handshake
        client.loop_start()

    def connected(self) -> int:
        """The CONNACK reason code (0: accepted)."""
        return self.connack.get(timeout=10)

    def _ack(self, mid: int) -> list[int]:
        got_mid, codes = self.acks.get(timeout=10)
        assert got_mid == mid
        return codes

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; the PUBACK reason code (0 delivered or no subscriber, 135 refused)."""
        return self._ack(self.client.publish(topic, payload, qos=1).mid)[0]

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; the SUBACK reason code (1 granted, 0x87 refused)."""
        return self._ack(self.client.subscribe(topic, qos=1)[1])[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def refused_at_handshake(broker: Broker, client_id: str, cert: tuple[Path, Path]) -> bool:
    """Whether the device listener refuses this certificate in the TLS handshake. Under TLS 1.3
    the client's side of the handshake ends before the broker checks its certificate, so the
    refusal shows either as an ``ssl.SSLError`` or as a connection closed with no CONNACK."""
    try:
        device = MqttDevice(broker, client_id, cert=cert)
    except (ssl.SSLError, ConnectionError):
        return True
    try:
        closed = device.disconnected.wait(10)
        return closed and device.connack.empty()
    finally:
        device.close()
