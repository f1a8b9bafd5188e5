#!/usr/bin/env python3
"""Install provisiond as a user does and check that the server works.

Builds the wheel from this checkout, installs it WITHOUT extras into a fresh virtualenv in a temp
dir, imports every module of the package, runs ``provisiond --help``, ``provisiond init --json``
and ``provisiond serve`` on free ports, makes authenticated HTTPS requests to the DPS service API,
then stops the server with SIGTERM. A runtime dependency declared only in an extra, a file left
out of the wheel or a server that does not start fails this script (exit 1, server log printed).

Standard library only: it runs before anything of the project is installed.
Usage: python3 .ci/wheel_smoke.py
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
API_VERSION = "2021-10-01"
STEP_TIMEOUT = 900  # seconds for one pip step: a hung download fails here, not at CI's time limit
SERVE_TIMEOUT = 60  # seconds for the server to listen
STOP_TIMEOUT = 30  # seconds for the server to exit after SIGTERM

# Imported by walking the package; the two skipped modules run only in their own context:
# ``__main__`` runs the CLI when imported, the Alembic ``env`` runs inside a migration (which
# ``provisiond init`` below performs).
IMPORT_ALL = """
import importlib, pkgutil, sys
import provisiond
skip = ("provisiond.__main__", "provisiond.store.migrations.env")
names = [m.name for m in pkgutil.walk_packages(provisiond.__path__, "provisiond.") if m.name not in skip]
failed = 0
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed += 1
        print(f"cannot import {name}: {type(exc).__name__}: {exc}")
print(f"imported {len(names) - failed} of {len(names)} modules")
sys.exit(1 if failed else 0)
"""


class SmokeFailure(Exception):
    pass


def step(message: str) -> None:
    print(f"wheel-smoke: {message}", flush=True)


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, merge: bool = True) -> str:
    """Run a command; its output (stdout, and stderr too if ``merge``) is returned, and all of
    it printed if it fails."""
    shown = " ".join("<script>" if "\n" in arg else arg for arg in cmd)
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SmokeFailure(f"timed out after {STEP_TIMEOUT} s: {shown}") from exc
    if done.returncode != 0:
        print(done.stdout, done.stderr or "", sep="\n", flush=True)
        raise SmokeFailure(f"exit status {done.returncode}: {shown}")
    return done.stdout


def copy_source(dest: Path) -> None:
    """The checkout's files as git sees them (tracked and new, not ignored): no venv, no stale
    build/ or egg-info, which pip would otherwise reuse or write into the working tree."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        stdout=subprocess.PIPE,
        check=True,
        timeout=60,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def check_wheel_contents(wheel: Path, source: Path) -> None:
    """Every file of the source package (modules, migrations, data) is in the wheel."""
    package = source / "src"
    wanted = {
        p.relative_to(package).as_posix()
        for p in (package / "provisiond").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    with zipfile.ZipFile(wheel) as zf:
        missing = sorted(wanted - set(zf.namelist()))
    if missing:
        raise SmokeFailure(f"the wheel lacks {len(missing)} file(s) of the package: {missing}")
    step(f"the wheel holds all {len(wanted)} files of src/provisiond")


def migration_head(source: Path) -> str:
    """The newest Alembic revision in the source tree: the one no other revision follows."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (source / "src/provisiond/store/migrations/versions").glob("*.py"):
        text = path.read_text()
        rev = re.search(r'^revision\s*=\s*["\']([^"\']+)', text, re.M)
        down = re.search(r'^down_revision\s*=\s*["\']([^"\']+)', text, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise SmokeFailure(f"expected one migration head in the source, found {sorted(heads)}")
    return heads.pop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SmokeFailure(f"provisiond serve exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SmokeFailure(f"provisiond serve did not listen on port {port} within {SERVE_TIMEOUT} s")


def sas_token(host: str, key_name: str, key: str, ttl: int = 300) -> str:
    """A DPS service SAS token for ``host`` (sr percent-encoded, HMAC over sr as sent)."""
    resource = urllib.parse.quote(host, safe="")
    expiry = str(int(time.time()) + ttl)
    digest = hmac.new(base64.b64decode(key), f"{resource}\n{expiry}".encode(), hashlib.sha256).digest()
    sig = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
    return f"SharedAccessSignature sr={resource}&sig={sig}&se={expiry}&skn={key_name}"


def _opener(tls: ssl.SSLContext) -> urllib.request.OpenerDirector:
    """HTTPS trusting only the dev CA, straight to localhost whatever *_proxy says."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
    )


def call(tls: ssl.SSLContext, method: str, url: str, auth: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": auth, "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    # The URL is https://localhost:<port>/... built from the server's own connection string.
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with _opener(tls).open(request, timeout=30) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


def expect(condition: bool, what: str, detail: Any) -> None:
    if not condition:
        raise SmokeFailure(f"{what}; got {detail!r}")


def exercise_api(init: dict[str, Any]) -> None:
    conn = dict(part.split("=", 1) for part in init["serviceConnectionString"].split(";"))
    host, key_name, key = conn["HostName"], conn["SharedAccessKeyName"], conn["SharedAccessKey"]
    tls = ssl.create_default_context(cafile=init["caCertificate"])
    base = f"https://{host}"
    auth = sas_token(host, key_name, key)
    rid = "wheel-smoke-1"

    url = f"{base}/enrollments/{rid}?api-version={API_VERSION}"
    status, body = call(
        tls, "PUT", url, auth, {"registrationId": rid, "attestation": {"type": "symmetricKey"}}
    )
    expect(status == 200, f"PUT /enrollments/{rid} should answer 200", (status, body))
    expect(
        isinstance(body, dict) and body.get("registrationId") == rid,
        "PUT should return the enrollment",
        body,
    )
    expect(
        bool(body.get("attestation", {}).get("symmetricKey", {}).get("primaryKey")),
        "the enrollment should have a generated primary key",
        body,
    )

    status, body = call(tls, "GET", url, auth)
    expect(
        status == 200 and isinstance(body, dict), f"GET /enrollments/{rid} should answer 200", (status, body)
    )
    expect(body.get("registrationId") == rid, "GET should return the enrollment", body)

    query = f"{base}/enrollments/query?api-version={API_VERSION}"
    status, body = call(tls, "POST", query, auth, {"query": "*"})
    expect(
        status == 200 and isinstance(body, list),
        "POST /enrollments/query should answer a list",
        (status, body),
    )
    expect([e.get("registrationId") for e in body] == [rid], "the query should list the one enrollment", body)

    forged = sas_token(host, key_name, base64.b64encode(b"not the key" * 3).decode())
    status, body = call(tls, "GET", url, forged)
    expect(status == 401, "a token signed with another key should be refused with 401", (status, body))
    step("HTTPS: PUT, GET and query of an enrollment answered as expected; a forged token got 401")

    # The API's description is built at the first request, from code that must not need the dev
    # extra (pydantic's and msgspec's JSON Schema only).
    status, body = call(tls, "GET", f"{base}/openapi/dps-service.json", auth)
    expect(
        status == 200 and isinstance(body, dict) and str(body.get("openapi", "")).startswith("3.1"),
        "GET /openapi/dps-service.json should answer the OpenAPI 3.1 document",
        (status, str(body)[:300]),
    )
    status, body = call(tls, "GET", f"{base}/openapi/dps-service.json", forged)
    expect(status == 401, "the document should be refused to a forged token", (status, body))
    step("HTTPS: the OpenAPI document was served to the owner and refused to a forged token")


def stop(server: subprocess.Popen[bytes] | None) -> None:
    if server is not None and server.poll() is None:
        server.kill()
        server.wait()


def fail(message: str, server: subprocess.Popen[bytes] | None, log: Path | None) -> NoReturn:
    stop(server)
    print(f"\nwheel-smoke: FAILED: {message}", file=sys.stderr, flush=True)
    if log is not None and log.exists():
        print(f"---- {log.name} ----", file=sys.stderr)
        print(log.read_text(errors="replace"), file=sys.stderr)
        print("---- end ----", file=sys.stderr, flush=True)
    sys.exit(1)


def _terminated(signum: int, _frame: object) -> NoReturn:
    raise SmokeFailure(f"interrupted by signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGHUP, _terminated)
    tmp = Path(tempfile.mkdtemp(prefix="provisiond-wheel-smoke-"))
    server: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    try:
        source, dist, venv, data = tmp / "source", tmp / "dist", tmp / "venv", tmp / "data"
        source.mkdir()
        copy_source(source)

        step(f"fresh virtualenv in {venv}")
        run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
        python = str(venv / "bin" / "python")
        provisiond = str(venv / "bin" / "provisiond")
        # Python 3.12+ venvs have no setuptools: make sure the server does not lean on it either.
        run([python, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"], cwd=tmp)

        step("building the wheel")
        build_log = run(
            [python, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(dist), str(source)], cwd=tmp
        )
        warnings = sorted(
            {line.strip() for line in build_log.splitlines() if re.search(r"\w+Warning: ", line)}
        )
        for line in warnings:
            print(f"wheel-smoke: WARNING from the build: {line}", flush=True)
        wheels = list(dist.glob("provisiond-*.whl"))
        expect(len(wheels) == 1, "pip wheel should build one provisiond wheel", wheels)
        wheel = wheels[0]
        check_wheel_contents(wheel, source)

        step(f"installing {wheel.name} without extras")
        run([python, "-m", "pip", "install", str(wheel)], cwd=tmp)
        run([python, "-m", "pip", "check"], cwd=tmp)
        print(run([python, "-c", IMPORT_ALL], cwd=tmp).strip(), flush=True)
        run([provisiond, "--help"], cwd=tmp)

        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
        port, mqtt_port = free_port(), free_port()
        step(f"provisiond init (HTTPS port {port}, MQTT port {mqtt_port})")
        init_cmd = [provisiond, "init", "--data-dir", str(data), "--port", str(port)]
        init_cmd += ["--mqtt-port", str(mqtt_port), "--json"]
        out = run(init_cmd, cwd=tmp, env=env, merge=False)  # stdout is the JSON alone
        try:
            init = json.loads(out)
        except json.JSONDecodeError as exc:
            raise SmokeFailure(f"provisiond init --json did not print one JSON object: {out!r}") from exc
        for field in ("serviceConnectionString", "caCertificate", "idScope"):
            expect(field in init, f"init --json should hold {field}", init)
        with contextlib.closing(sqlite3.connect(data / "provisiond.db")) as db:
            revision = [row[0] for row in db.execute("SELECT version_num FROM alembic_version")]
        head = migration_head(source)
        expect(revision == [head], f"init should migrate the database to {head}", revision)
        step(f"the database is migrated to revision {head}")

        step("provisiond serve")
        log = tmp / "serve.log"
        with log.open("wb") as out_file:
            server = subprocess.Popen(
                [provisiond, "serve", "--data-dir", str(data)],
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                env=env,
            )
        wait_for_port(port, server)
        wait_for_port(mqtt_port, server)  # the MQTT listener opens once startup is complete
        exercise_api(init)

        server.send_signal(signal.SIGTERM)
        try:
            status = server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise SmokeFailure(f"provisiond serve did not stop within {STOP_TIMEOUT} s of SIGTERM") from exc
        expect(status == 0, "provisiond serve should exit 0 on SIGTERM", status)
        step("the server stopped cleanly on SIGTERM")
        step("passed")
    except SmokeFailure as exc:
        fail(str(exc), server, log)
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}", server, log)
    except KeyboardInterrupt:
        fail("interrupted", server, log)
    finally:
        stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
