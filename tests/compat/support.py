"""Helpers for the compat suites: child environments that trust the test CA, and running Node clients.

See ``shared/reference/CLIENTS.md`` §3 and §7. The environment may preset trust variables to the
system bundle, so they are always *assigned* here, never defaulted.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.support.server import ServerProcess

__all__ = [
    "NODE_DIR",
    "TRUST_VARS",
    "compat_env",
    "dps_env",
    "new_symmetric_key",
    "node_json",
    "run_node",
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
    """The variables CLIENTS.md §4 snippets read to reach ``server`` as the owner policy."""
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
