"""Running a document's snippets in order, as a reader would, against a real server.

A document is a story: its blocks run one after another in one working directory, sharing the
environment. The working directory is a fresh temporary directory laid out like a clone in which
the reader has done the install steps:

* ``examples/`` and ``tests/`` are the repository's, ``provisiond`` on ``PATH`` runs this checkout's code,
* ``sdk-venv`` is ``.venv-compat`` (the official Python SDKs, pinned in tests/compat/requirements.txt),
* ``node_modules`` is ``tests/compat/node/node_modules`` (the official Node SDKs, pinned there),
* ``./provisiond-data`` is the data directory (provisiond's default).

The variables every document may use (docs/quickstart.md sets them the same way):
``PORT``, ``MQTT_PORT``, ``ID_SCOPE``, ``CONNECTION_STRING``, ``CA``. Unless the document starts its
own server (a ``background`` block), the runner starts one on free ports and sets them from its
``init --json``. Trust variables (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, …) are removed, so a
snippet that forgets the CA fails here as it would for a reader.

``sh`` blocks run in bash with ``set -euo pipefail``; what they ``export`` is seen by later blocks.
``console`` blocks run their ``$ `` lines the same way. ``python`` blocks run with ``sdk-venv``'s
interpreter, ``js`` blocks with node, both as files in the working directory. ``http`` blocks are
sent to the server (``$NAME`` expanded from the environment) and the status they show is asserted.
``json`` blocks must parse. Directives (markdown.py) change what happens to a block.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.docs.markdown import Block
from tests.support.server import ServerProcess, _wait_for_port, start_server

__all__ = ["REPO", "DocRun", "SnippetFailed"]

REPO = Path(__file__).resolve().parents[2]
BLOCK_TIMEOUT = 120
TRUST_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_HEADER = re.compile(r"^[A-Za-z][\w-]*: ")
_STATUS_LINE = re.compile(r"^(?P<status>[1-5]\d\d)(?: .*)?$")


class SnippetFailed(AssertionError):
    """A block did not do what the document says it does."""


@dataclass
class DocRun:
    """The working directory, environment and processes of one document's story."""

    workdir: Path
    env: dict[str, str]
    last_output: str = ""
    server: ServerProcess | None = None
    background: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    @classmethod
    def create(cls, workdir: Path) -> DocRun:
        """A working directory laid out like an installed clone (see the module docstring)."""
        for needed in (REPO / ".venv-compat" / "bin" / "python", REPO / "tests/compat/node/node_modules"):
            if not needed.exists():
                raise SnippetFailed(f"{needed} is missing: `make test` installs it (the SDKs the docs use)")
        bin_dir = workdir / ".bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "provisiond"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m provisiond "$@"\n')
        wrapper.chmod(0o755)
        (workdir / "examples").symlink_to(REPO / "examples")
        (workdir / "tests").symlink_to(REPO / "tests")  # a clone has them (docs/hubs.md runs a double)
        (workdir / "sdk-venv").symlink_to(REPO / ".venv-compat")
        (workdir / "node_modules").symlink_to(REPO / "tests" / "compat" / "node" / "node_modules")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_") and k not in TRUST_VARS}
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO / "src")  # provisiond from this checkout, whatever .venv points at
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1"
        return cls(workdir, env)

    # --- the server --------------------------------------------------------------------------

    def start_server(self) -> None:
        """A server on free ports in ./provisiond-data, and the variables the docs use to reach it."""
        server = start_server(self.workdir / "provisiond-data", env={"PYTHONPATH": self.env["PYTHONPATH"]})
        self.server = server
        self.env.update(
            PORT=str(server.port),
            MQTT_PORT=str(server.mqtt_port),
            ID_SCOPE=server.id_scope,
            CONNECTION_STRING=str(server.init["serviceConnectionString"]),
            CA=server.ca,
        )

    def close(self) -> None:
        """Stop what the story started: background blocks (their whole process group), the server."""
        for proc, _log in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if self.server:
            self.server.stop()

    # --- running blocks ----------------------------------------------------------------------

    def _run(self, block: Block, argv: list[str], stdin: str | None = None) -> str:
        proc = subprocess.run(
            argv,
            cwd=self.workdir,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise SnippetFailed(
                f"{block.where} ({block.language}) exited {proc.returncode}\n--- block:\n{block.text}"
                f"--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}{self._server_log()}"
            )
        return proc.stdout

    def _server_log(self) -> str:
        logs = [log for _proc, log in self.background] + ([self.server.log] if self.server else [])
        tails = [
            "\n".join(log.read_text(errors="replace").splitlines()[-30:]) for log in logs if log.exists()
        ]
        return "".join(f"\n--- server log (tail):\n{tail}" for tail in tails)

    def _shell(self, block: Block, script: str) -> str:
        """Run ``script`` in bash; keep the environment it exported for the blocks after it."""
        env_file = self.workdir / ".snippet-env"
        body = f"set -euo pipefail\n{script}\nenv -0 > {shlex.quote(str(env_file))}\n"
        out = self._run(block, ["bash", "-c", body])
        self.env = dict(entry.split("=", 1) for entry in env_file.read_text().split("\0") if "=" in entry)
        return out

    def run_sh(self, block: Block) -> str:
        return self._shell(block, block.text)

    def run_console(self, block: Block) -> str:
        """The ``$ `` lines (with their ``\\`` continuations); the other lines are output shown."""
        commands: list[str] = []
        continuing = False
        for line in block.text.splitlines():
            if continuing:
                commands[-1] += "\n" + line
            elif line.startswith("$ "):
                commands.append(line[2:])
            else:
                continue
            continuing = line.endswith("\\")
        if not commands:
            raise SnippetFailed(f"{block.where}: a console block without a `$ ` command")
        return self._shell(block, "\n".join(commands))

    def _script_file(self, block: Block, suffix: str) -> Path:
        path = self.workdir / f"snippet_{block.path.stem}_{block.line}{suffix}"
        path.write_text(block.text)
        return path

    def run_python(self, block: Block) -> str:
        script = self._script_file(block, ".py")
        return self._run(block, [str(self.workdir / "sdk-venv" / "bin" / "python"), script.name])

    def run_js(self, block: Block) -> str:
        return self._run(block, ["node", self._script_file(block, ".js").name])

    def save_file(self, block: Block) -> str:
        assert block.directive is not None
        name = block.directive.args[0]
        (self.workdir / name).write_text(block.text)
        return self.last_output  # saving prints nothing: an output block after it shows the run before

    def run_background(self, block: Block) -> str:
        """Start the block in its own process group and wait until ``$PORT`` and ``$MQTT_PORT`` listen."""
        log = self.workdir / f"background_{block.line}.log"
        script = f"set -euo pipefail\n{block.text}"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((proc, log))
        for name in ("PORT", "MQTT_PORT"):
            _wait_for_port(int(self.env[name]), proc, log)
        return ""

    def expand(self, block: Block, text: str) -> str:
        """``$NAME`` and ``${NAME}`` from the story's environment; an unset one fails the block."""

        def value(match: re.Match[str]) -> str:
            name = match.group("braced") or match.group("plain")
            if name not in self.env:
                raise SnippetFailed(f"{block.where}: ${name} is not set by an earlier block")
            return self.env[name]

        return _VAR.sub(value, text)

    def run_http(self, block: Block) -> str:
        """Send the request; assert the status the block shows after a blank line, if it shows one."""
        lines = block.text.splitlines()
        status_at = next((i for i, line in enumerate(lines) if _STATUS_LINE.match(line)), len(lines))
        request = self.expand(block, "\n".join(lines[:status_at])).strip().splitlines()
        method, target = request[0].split()[:2]
        headers: dict[str, str] = {}
        body_at = len(request)
        for i, line in enumerate(request[1:], start=1):
            if not line.strip():
                body_at = i + 1
                break
            name, _, val = line.partition(":")
            headers[name.strip()] = val.strip()
        body = "\n".join(request[body_at:]).strip()
        if body and headers.get("Content-Type", "application/json") == "application/json":
            json.loads(body)  # a JSON body must at least be JSON
            headers.setdefault("Content-Type", "application/json")
        verify = ssl.create_default_context(cafile=self.env["CA"])
        with httpx.Client(verify=verify, trust_env=False, timeout=30) as client:
            response = client.request(
                method, f"https://localhost:{self.env['PORT']}{target}", headers=headers, content=body or None
            )
        if status_at < len(lines):
            self._check_response(block, f"{method} {target}", lines[status_at:], response)
        if block.directive and block.directive.kind == "sets":
            answer = response.json()
            for pair in block.directive.args:
                name, _, path = pair.partition("=")
                value = answer
                for step in path.split("."):  # a dotted path: operations.0.operationId
                    value = value[int(step)] if isinstance(value, list) else value[step]
                self.env[name] = str(value)
        return response.text

    def _check_response(self, block: Block, request: str, shown: list[str], response: httpx.Response) -> None:
        """The status shown, the header names shown, and (when the body shown is JSON) its keys."""
        status = int(shown[0].split()[0])
        if response.status_code != status:
            raise SnippetFailed(
                f"{block.where}: {request} answered {response.status_code}, the doc shows {status}:\n{response.text}"
            )
        body_at = 1
        while body_at < len(shown) and _HEADER.match(shown[body_at]):
            name = shown[body_at].split(":", 1)[0]
            if name not in response.headers:
                raise SnippetFailed(
                    f"{block.where}: {request} answered without the {name} header the doc shows"
                )
            body_at += 1
        body = "\n".join(shown[body_at:]).strip()
        try:
            shown_body = json.loads(body) if body else None
        except json.JSONDecodeError:
            return  # an abbreviated body (…) shows the shape in prose; the status was checked
        if shown_body is not None:
            _same_keys(block, shown_body, response.json(), "$")

    def check_json(self, block: Block) -> str:
        try:
            json.loads(block.text)
        except json.JSONDecodeError as exc:
            raise SnippetFailed(f"{block.where}: not JSON: {exc}\n{block.text}") from exc
        return self.last_output

    def check_output(self, block: Block) -> str:
        """Compare an ``output`` block with what the block before it printed.

        JSON: the same keys at every level (values vary: ids, keys, times). Text: each line shown
        matches a line printed, in order, ``…`` standing for any text.
        """
        actual = self.last_output
        if block.language == "json":
            shown = _loads(block, block.text)
            printed = [line for line in actual.splitlines() if line.strip()]
            if not printed:
                raise SnippetFailed(f"{block.where}: the block before printed nothing")
            got = _loads(block, printed[-1]) if len(printed) > 1 else _loads(block, actual)
            _same_keys(block, shown, got, "$")
            return actual
        lines = [line for line in actual.splitlines() if line.strip()]
        for want in (line for line in block.text.splitlines() if line.strip()):
            pattern = re.compile(".*".join(re.escape(part) for part in want.strip().split("…")))
            while lines and not pattern.fullmatch(lines[0].strip()):
                lines.pop(0)
            if not lines:
                raise SnippetFailed(f"{block.where}: {want!r} was not printed; printed:\n{actual}")
            lines.pop(0)
        return actual

    def run(self, block: Block) -> None:
        """Do with ``block`` what its directive, or else its language, says."""
        handlers = {
            "sh": self.run_sh,
            "console": self.run_console,
            "python": self.run_python,
            "js": self.run_js,
            "http": self.run_http,
            "sets": self.run_http,
            "json": self.check_json,
            "output": self.check_output,
            "file": self.save_file,
            "background": self.run_background,
        }
        if block.kind in ("install", "skip", "figure"):
            return
        self.last_output = handlers[block.kind](block)


def _loads(block: Block, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnippetFailed(f"{block.where}: not JSON: {exc}\n{text}") from exc


def _same_keys(block: Block, shown: Any, got: Any, path: str) -> None:
    if isinstance(shown, dict):
        if not isinstance(got, dict) or set(shown) != set(got):
            raise SnippetFailed(
                f"{block.where}: at {path} the doc shows keys {sorted(shown)}, the server answered "
                f"{sorted(got) if isinstance(got, dict) else type(got).__name__}:\n{json.dumps(got)}"
            )
        for key, value in shown.items():
            _same_keys(block, value, got[key], f"{path}.{key}")
    elif isinstance(shown, list) and shown and isinstance(got, list) and got:
        _same_keys(block, shown[0], got[0], f"{path}[0]")


def new_workdir() -> Path:
    """A fresh temporary working directory (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix="provisiond-docs-"))
