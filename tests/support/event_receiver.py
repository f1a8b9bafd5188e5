"""A real HTTPS receiver of provisiond's event webhooks, for tests.

It serves TLS with a certificate from its own private CA (``ca_file``, what
``PROVISIOND_WEBHOOK_CA_FILE`` points the server at) and verifies every request with the official
``standardwebhooks`` library: a request that fails verification is answered 400 and counted in
``rejected``. It can fail the first attempts of each event (``fail_first``) to exercise retries.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from collections import Counter
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
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.pki import issue

__all__ = ["Receiver", "serve_receiver"]


@dataclass
class Receiver:
    """What arrived: ``events`` (verified, in arrival order, duplicates included), ``attempts`` per id."""

    url: str = ""
    ca_file: Path = Path()
    secret: str = ""
    fail_first: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unique(self) -> list[dict[str, Any]]:
        """The events in the order they first arrived, each once (what a deduplicating receiver keeps)."""
        seen: set[str] = set()
        out = []
        for event in list(self.events):
            if event["id"] not in seen:
                seen.add(event["id"])
                out.append(event)
        return out


def _server_cert(directory: Path) -> tuple[Path, Path, Path]:
    ca = issue("event receiver test CA", ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca.key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (
        directory / "receiver-ca.pem",
        directory / "receiver.pem",
        directory / "receiver.key",
    )
    ca_file.write_text(ca.pem)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


@contextmanager
def serve_receiver(directory: Path, secret: str, fail_first: int = 0) -> Iterator[Receiver]:
    ca_file, cert_file, key_file = _server_cert(directory)
    receiver = Receiver(ca_file=ca_file, secret=secret, fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                Webhook(receiver.secret).verify(body, headers)
            except WebhookVerificationError:
                with receiver.lock:
                    receiver.rejected += 1
                self._answer(400)
                return
            event = json.loads(body)
            with receiver.lock:
                receiver.attempts[event["id"]] += 1
                failing = receiver.attempts[event["id"]] <= receiver.fail_first
                if not failing:
                    receiver.events.append(event)
                    receiver.headers.append(headers)
            self._answer(503 if failing else 204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    receiver.url = f"https://127.0.0.1:{server.server_address[1]}/hooks/provisiond"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
