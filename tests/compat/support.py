"""Helpers for the compat suites: child environments that trust the test CA, and running Node clients.

The environment may preset trust variables to the system bundle, so they are always *assigned*
here, never defaulted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import ServerProcess

__all__ = [
    "NODE_DIR",
    "SERVICE_API_VERSION",
    "TRUST_VARS",
    "add_ca",
    "compat_env",
    "derive_device_key",
    "dps_env",
    "link_hub",
    "new_symmetric_key",
    "node_json",
    "run_node",
    "service_request",
    "unique_id",
]

NODE_DIR = Path(__file__).resolve().parent / "node"

TRUST_VARS = (
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTPLIB2_CA_CERTS",
    "SSL_CERT_FILE",
)
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


def _no_proxy(current: str) -> str:
    hosts = [h for h in current.split(",") if h.strip()]
    hosts += [h for h in _LOCAL_HOSTS if h not in hosts]
    return ",".join(hosts)


def compat_env(ca_pem: str, **extra: str) -> dict[str, str]:
    """A child environment that trusts only what we mean it to: assign, never setdefault.

    Every trust variable names the test CA, ``TEST_CA_PEM`` too; the proxy bypass covers the
    local server; ``extra`` is assigned last.
    """
    env = dict(os.environ)
    env.update({name: ca_pem for name in TRUST_VARS})
    env["TEST_CA_PEM"] = ca_pem
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = _no_proxy(env.get(name, ""))
    env.update(extra)
    return env


def dps_env(server: ServerProcess) -> dict[str, str]:
    """The variables the compat client scripts read to reach ``server`` as the owner policy."""
    return {
        "TEST_CA_PEM": server.ca,
        "DPS_HTTPS_PORT": str(server.port),
        "DPS_MQTT_PORT": str(server.mqtt_port),
        "DPS_KEY": server.owner_key,
        "ID_SCOPE": server.id_scope,
    }


def run_node(
    script: str, ca_pem: str, *args: str, timeout: float = 90, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run ``node <script> <args…>`` in tests/compat/node with :func:`compat_env`; never raises on exit status."""
    if not (NODE_DIR / "node_modules").is_dir():
        raise RuntimeError(f"{NODE_DIR}/node_modules is missing: run `make test` (or `npm ci` there) first")
    return subprocess.run(
        ["node", script, *args],
        cwd=NODE_DIR,
        env=compat_env(ca_pem, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def node_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON line a Node client printed last; fails with its stderr when it exited non-zero."""
    assert proc.returncode == 0, (
        f"{' '.join(map(str, proc.args))} exited {proc.returncode}\nstderr:\n{proc.stderr}\nstdout:\n{proc.stdout}"
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"no output from {' '.join(map(str, proc.args))}\nstderr:\n{proc.stderr}"
    return json.loads(lines[-1])


def unique_id(prefix: str) -> str:
    """A registration / group id no other test on the shared server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_symmetric_key() -> str:
    """A random base64 key, as DPS generates for symmetric-key attestation."""
    return base64.b64encode(os.urandom(32)).decode()


def derive_device_key(group_key_b64: str, registration_id: str) -> str:
    """A group member's key: base64(HMAC-SHA256(base64decode(group key), registration id)).

    The derivation DPS uses for symmetric-key enrollment groups (docs/devices.md).
    """
    digest = hmac.new(base64.b64decode(group_key_b64), registration_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


SERVICE_API_VERSION = "2021-10-01"


def service_request(
    server: ServerProcess,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One DPS service REST API call as the owner policy, signed like the Node SDK (``sr=localhost``)."""
    token = server.service_sas()
    with httpx.Client(
        base_url=server.base_url,
        verify=ssl.create_default_context(cafile=server.ca),
        trust_env=False,
        timeout=30,
    ) as client:
        return client.request(
            method,
            path,
            params={"api-version": SERVICE_API_VERSION},
            json=json,
            headers={"Authorization": token, **(headers or {})},
        )


def link_hub(server: ServerProcess, prefix: str = "hub", *options: str) -> str:
    """Link a new, uniquely named IoT hub with ``provisiond dps hub add``; returns its host name."""
    host = f"{unique_id(prefix)}.example"
    server.cli("dps", "hub", "add", host, *options)
    return host


def add_ca(server: ServerProcess, pem_file: Path, prefix: str = "ca") -> str:
    """Add the CA certificate in ``pem_file`` under a unique name with ``provisiond dps ca add``.

    Returns the name, which enrollment groups reference in ``attestation.x509.caReferences``.
    """
    name = unique_id(prefix)
    server.cli("dps", "ca", "add", str(pem_file), "--name", name)
    return name


def server_log_tail(server: ServerProcess, lines: int = 60) -> str:
    """The last ``lines`` lines of the server's log, for failure messages."""
    try:
        return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {server.log}: {exc})"


def wait_until_listening(port: int, timeout: float = 30) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``; fail loudly otherwise."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s: {exc}") from exc
            time.sleep(0.1)


def compat_python() -> Path:
    """The interpreter of ``.venv-compat`` (the official Python SDKs); fails when it was never built."""
    path = Path(__file__).resolve().parents[2] / ".venv-compat" / "bin" / "python"
    if not path.exists():
        raise AssertionError(
            f"{path} is missing: `make test` builds it; by hand: python3.11 -m venv .venv-compat && "
            ".venv-compat/bin/pip install -r tests/compat/requirements.txt"
        )
    return path


def run_compat_python(
    script: Path, ca_pem: str, *args: str, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run ``<.venv-compat python> <script> <args…>`` with :func:`compat_env`; never raises on exit status."""
    return subprocess.run(
        [str(compat_python()), str(script), *args],
        env=compat_env(ca_pem, PYTHONDONTWRITEBYTECODE="1", **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
