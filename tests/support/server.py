"""Starting and stopping a real ``provisiond serve`` process for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from provisiond.domain.sas import build_sas

__all__ = ["ServerProcess", "free_port", "start_server"]

PROVISIOND = [sys.executable, "-m", "provisiond"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"provisiond serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"provisiond serve did not listen on {port} within {timeout}s:\n{log.read_text()}")


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    mqtt_port: int
    init: dict[str, object]
    proc: subprocess.Popen[bytes]
    log: Path
    database: str | None = None
    env: dict[str, str] | None = None  # the environment init and serve ran with (commands get it too)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.init["caCertificate"])

    @property
    def id_scope(self) -> str:
        return str(self.init["idScope"])

    @property
    def owner_key(self) -> str:
        conn = str(self.init["serviceConnectionString"])
        return conn.split("SharedAccessKey=", 1)[1]

    def http(self, ssl_context: ssl.SSLContext | None = None) -> httpx.Client:
        """An HTTPS client for this server that trusts its CA (``ssl_context``: e.g. with a client
        certificate loaded) and ignores proxy variables."""
        verify = ssl_context or ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.base_url, verify=verify, trust_env=False, timeout=30)

    def service_sas(self, ttl: int = 3600) -> str:
        """A service API token signed with the owner policy's key, valid for ``ttl`` seconds."""
        return build_sas(self.owner_key, "localhost", int(time.time()) + ttl, "provisioningserviceowner")

    def register_device(self, registration_id: str, key: str) -> str:
        """A symmetric-key device's register call over HTTPS (202 expected); its operation id."""
        resource = f"{self.id_scope}/registrations/{registration_id}"
        token = build_sas(key, resource, int(time.time()) + 600, "registration")
        with self.http() as http:
            r = http.put(
                f"/{resource}/register",
                params={"api-version": "2019-03-31"},
                json={"registrationId": registration_id},
                headers={"Authorization": token},
            )
        assert r.status_code == 202, r.text
        return str(r.json()["operationId"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``provisiond`` command against this server's data dir (and database)."""
        extra = ["--data-dir", str(self.data_dir)]
        if self.database:
            extra += ["--database", self.database]
        return subprocess.run(
            [*PROVISIOND, *args, *extra],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
            env=self.env,
        )

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """The server's peak resident set size (VmHWM), in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    data_dir: Path,
    *,
    database: str | None = None,
    port: int | None = None,
    settings: dict[str, object] | None = None,
    serve_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """``provisiond init --json`` then ``provisiond serve`` on free ports; waits until it serves.

    ``settings`` are written into the data dir's settings.json before the server starts;
    ``serve_args`` are added to the ``serve`` command line (e.g. ``--processes 2``);
    ``env`` is added to the environment of ``init`` and ``serve`` (e.g. ``PROVISIOND_HEADER_TIMEOUT``,
    or ``PROVISIOND_SECRETS_KEY_FILE`` for servers that share one database).
    """
    settings_file = data_dir / "settings.json"
    recorded = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    if port is None and "port" in recorded:  # a restart: init refuses other ports than the recorded ones
        port, mqtt_port = recorded["port"], recorded["mqtt_port"]
    else:
        port, mqtt_port = port or free_port(), free_port()
    common = ["--data-dir", str(data_dir)] + (["--database", database] if database else [])
    serve_env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")} | (env or {})
    init = subprocess.run(
        [*PROVISIOND, "init", "--json", "--port", str(port), "--mqtt-port", str(mqtt_port), *common],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=serve_env,
    )
    if settings:
        path = data_dir / "settings.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PROVISIOND, "serve", "--host", "127.0.0.1", *common, *serve_args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=serve_env,
        )
    _wait_for_port(port, proc, log)
    if "--no-mqtt" not in serve_args:
        # The HTTPS socket is bound before the app starts; the MQTT listener opens only once
        # startup is complete, so it is the signal that the server is ready.
        _wait_for_port(mqtt_port, proc, log)
    return ServerProcess(data_dir, port, mqtt_port, json.loads(init.stdout), proc, log, database, serve_env)
