"""A software TPM (swtpm) and a device driven by the TPM's own tools (tpm2-tools), for tests.

``SoftwareTpm`` runs ``swtpm socket`` on two free ports with its own state directory;
``TpmDevice`` does what a TPM device's SDK does, one ``tpm2_*`` command at a time: create the EK
and SRK with the SDKs' templates at the SDKs' persistent handles, take an activation blob
(ActivateCredential, Import, Load) and sign with the imported key (HMAC). ``fake_ek`` builds a
valid EK public area in software for tests that need no TPM.

Tests that need swtpm call ``require_swtpm()``: it skips when swtpm is absent, unless
``PROVISIOND_TEST_REQUIRE_TPM=1`` (set by ``.ci/run``), where an absent swtpm is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from provisiond.domain.tpm_activation import kdf_a
from provisiond.domain.tpm_public import (
    ALG_AES,
    ALG_CFB,
    ALG_NULL,
    ALG_RSA,
    ALG_SHA256,
    EK_ATTRIBUTES,
    EK_AUTH_POLICY,
    decode_public_b64,
)

from .server import free_port

__all__ = [
    "EK_HANDLE",
    "SRK_HANDLE",
    "SimulatorAdapter",
    "SoftwareKeys",
    "SoftwareTpm",
    "TpmCommandFailed",
    "TpmDevice",
    "fake_ek",
    "fake_srk",
    "require_swtpm",
    "split_blob",
]

EK_HANDLE = "0x81010001"
SRK_HANDLE = "0x81000001"
SRK_ATTRIBUTES = "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda"
_SRK_BITS = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 10) | (1 << 16) | (1 << 17)


def require_swtpm() -> None:
    """Skip (locally) or fail (CI) when swtpm and tpm2-tools are not installed."""
    missing = [tool for tool in ("swtpm", "tpm2_createek") if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (make system-deps)"
    if os.environ.get("PROVISIOND_TEST_REQUIRE_TPM") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port_pair() -> int:
    """A free port whose successor is free too (swtpm's command and control ports)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free pair of ports")


def _public_area(attributes: int, policy: bytes, modulus: bytes) -> bytes:
    area = (
        struct.pack(">HHI", ALG_RSA, ALG_SHA256, attributes)
        + struct.pack(">H", len(policy))
        + policy
        + struct.pack(">HHHHHI", ALG_AES, 128, ALG_CFB, ALG_NULL, 2048, 0)
        + struct.pack(">H", len(modulus))
        + modulus
    )
    return struct.pack(">H", len(area)) + area


def fake_ek(key: rsa.RSAPrivateKey | None = None) -> str:
    """Base64 of a TPM2B_PUBLIC with the TCG default EK template, for an RSA key made in software.

    Valid for enrollment; no TPM holds its private half unless ``key`` came from one.
    """
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    modulus = key.public_key().public_numbers().n.to_bytes(256, "big")
    return base64.b64encode(_public_area(EK_ATTRIBUTES, EK_AUTH_POLICY, modulus)).decode()


def fake_srk(key: rsa.RSAPrivateKey | None = None) -> str:
    """Base64 of a TPM2B_PUBLIC with the SDKs' SRK template, for an RSA key made in software."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    modulus = key.public_key().public_numbers().n.to_bytes(256, "big")
    return base64.b64encode(_public_area(_SRK_BITS, b"", modulus)).decode()


@dataclass
class SoftwareKeys:
    """An EK and SRK made in software, whose private halves open activation blobs in tests.

    ``open_blob`` undoes the server's wrapping the way a TPM does (ActivateCredential, then
    Import), checking both integrity HMACs, so in-process tests can act as a TPM device. It is
    the same TPM 2.0 recipe read backwards; the real TPM (swtpm) is used by the e2e tests.
    """

    ek_key: rsa.RSAPrivateKey = field(default_factory=lambda: _rsa())
    srk_key: rsa.RSAPrivateKey = field(default_factory=lambda: _rsa())

    @property
    def ek(self) -> str:
        return fake_ek(self.ek_key)

    @property
    def srk(self) -> str:
        return fake_srk(self.srk_key)

    def open_blob(self, blob_b64: str) -> bytes:
        """The HMAC key inside an activation blob; ``AssertionError`` if it is not for these keys."""
        credential, secret, duplicate, seed, public, trailer = split_blob(base64.b64decode(blob_b64))
        assert trailer == b"\x00\x00"
        srk_name = decode_public_b64(self.srk, "storageRootKey").name
        seed1 = self.ek_key.decrypt(secret[2:], _oaep(b"IDENTITY\x00"))
        integrity, enc_identity = credential[4:36], credential[36:]
        mac = hmac.new(kdf_a(seed1, b"INTEGRITY", b"", b"", 256), enc_identity + srk_name, hashlib.sha256)
        assert hmac.compare_digest(mac.digest(), integrity), "credential integrity"
        wrapper = _cfb_decrypt(kdf_a(seed1, b"STORAGE", srk_name, b"", 128), enc_identity)[2:]
        seed2 = self.srk_key.decrypt(seed[2:], _oaep(b"DUPLICATE\x00"))
        id_name = b"\x00\x0b" + hashlib.sha256(public[2:]).digest()
        outer, dup_sensitive = duplicate[4:36], duplicate[36:]
        mac = hmac.new(kdf_a(seed2, b"INTEGRITY", b"", b"", 256), dup_sensitive + id_name, hashlib.sha256)
        assert hmac.compare_digest(mac.digest(), outer), "duplicate integrity"
        plain = _cfb_decrypt(
            wrapper, _cfb_decrypt(kdf_a(seed2, b"STORAGE", id_name, b"", 128), dup_sensitive)
        )
        sensitive = plain[34:]
        assert plain[2:34] == hashlib.sha256(sensitive + id_name).digest(), "inner integrity"
        (size,) = struct.unpack(">H", sensitive[-34:-32])
        assert size == 32
        return sensitive[-32:]


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _oaep(label: bytes) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def _cfb_decrypt(key: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), CFB(bytes(16))).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def split_blob(blob: bytes) -> list[bytes]:
    """The six TPM2B parts of an activation blob (each with its size prefix)."""
    parts = []
    at = 0
    while at < len(blob):
        (size,) = struct.unpack(">H", blob[at : at + 2])
        parts.append(blob[at : at + 2 + size])
        at += 2 + size
    return parts


@dataclass
class SoftwareTpm:
    """``swtpm socket`` with a fresh state directory, on a pair of ports (command, control)."""

    state: Path
    port: int = field(default_factory=lambda: _free_port_pair())
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ctrl_port(self) -> int:
        """The swtpm TCTI expects the control channel on the next port."""
        return self.port + 1

    def start(self) -> SoftwareTpm:
        self.state.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "swtpm",
                "socket",
                "--tpm2",
                "--tpmstate",
                f"dir={self.state}",
                "--server",
                f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                "--ctrl",
                f"type=tcp,port={self.ctrl_port},bindaddr=127.0.0.1",
                "--flags",
                "not-need-init,startup-clear",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["tpm2_getcap", "properties-fixed"], env=self.env, capture_output=True, check=False
            )
            if probe.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("swtpm did not answer within 10 s")

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    @property
    def env(self) -> dict[str, str]:
        return os.environ | {"TPM2TOOLS_TCTI": self.tcti}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@dataclass
class TpmDevice:
    """A TPM device as its SDK would act, through tpm2-tools on ``tpm``; files go to ``work``."""

    tpm: SoftwareTpm
    work: Path

    def run(self, *args: str) -> bytes:
        done = subprocess.run(list(args), env=self.tpm.env, capture_output=True, check=False, cwd=self.work)
        if done.returncode != 0:
            raise TpmCommandFailed(args[0], done.stderr.decode(errors="replace"))
        return done.stdout

    def provision(self) -> tuple[str, str]:
        """Create and persist the EK and SRK as the SDKs do; (EK, SRK) as base64 TPM2B_PUBLIC."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.run("tpm2_createek", "-c", EK_HANDLE, "-G", "rsa", "-u", "ek.pub")
        self.run(
            "tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "rsa2048:null:aes128cfb",
            "-a", SRK_ATTRIBUTES, "-c", "srk.ctx",
        )  # fmt: skip
        self.run("tpm2_evictcontrol", "-C", "o", "-c", "srk.ctx", SRK_HANDLE)
        self.run("tpm2_readpublic", "-c", SRK_HANDLE, "-o", "srk.pub")
        self.run("tpm2_flushcontext", "-t")  # transient objects outlive tpm2-tools' connections
        return self.read_b64("ek.pub"), self.read_b64("srk.pub")

    def read_b64(self, name: str) -> str:
        return base64.b64encode((self.work / name).read_bytes()).decode()

    def activate(self, blob_b64: str) -> None:
        """Take an activation blob as the SDKs do: ActivateCredential for the inner wrapper under
        the EK's policy, Import of the ID key under the SRK, Load (the key stays in ``id.ctx``)."""
        parts = split_blob(base64.b64decode(blob_b64))
        credential, secret, duplicate, seed, public, trailer = parts
        assert trailer == b"\x00\x00"
        magic = struct.pack(">II", 0xBADCC0DE, 1)
        (self.work / "cred.blob").write_bytes(magic + credential + secret)
        (self.work / "dup.priv").write_bytes(duplicate)
        (self.work / "dup.seed").write_bytes(seed)
        (self.work / "id.pub").write_bytes(public)
        self.run("tpm2_startauthsession", "--policy-session", "-S", "session.ctx")
        try:
            self.run("tpm2_policysecret", "-S", "session.ctx", "-c", "e")
            self.run(
                "tpm2_activatecredential", "-c", SRK_HANDLE, "-C", EK_HANDLE, "-i", "cred.blob",
                "-o", "wrapper.bin", "-P", "session:session.ctx",
            )  # fmt: skip
        finally:
            self.run("tpm2_flushcontext", "session.ctx")
        self.run(
            "tpm2_import", "-C", SRK_HANDLE, "-u", "id.pub", "-i", "dup.priv", "-s", "dup.seed",
            "-k", "wrapper.bin", "-r", "id.priv",
        )  # fmt: skip
        self.run("tpm2_load", "-C", SRK_HANDLE, "-u", "id.pub", "-r", "id.priv", "-c", "id.ctx")

    def sign(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` by the TPM with the last key loaded by ``activate``."""
        (self.work / "data.bin").write_bytes(data)
        self.run("tpm2_hmac", "-c", "id.ctx", "-g", "sha256", "-o", "hmac.bin", "data.bin")
        self.run("tpm2_flushcontext", "-t")
        return (self.work / "hmac.bin").read_bytes()

    def sas(self, resource: str, expiry: int) -> str:
        """A device SAS token (``skn=registration``) signed by the TPM, as the SDKs build it."""
        sr = urllib.parse.quote(resource, safe="")
        sig = base64.b64encode(self.sign(f"{sr}\n{expiry}".encode())).decode()
        quoted = urllib.parse.quote(sig, safe="")
        return f"SharedAccessSignature sr={sr}&sig={quoted}&se={expiry}&skn=registration"


class TpmCommandFailed(RuntimeError):
    """A tpm2-tools command exited non-zero (the TPM refused, e.g. a blob for another TPM)."""

    def __init__(self, tool: str, stderr: str) -> None:
        super().__init__(f"{tool} failed: {stderr.strip()}")
        self.tool = tool
        self.stderr = stderr


class SimulatorAdapter:
    """The Microsoft/IBM TPM simulator's TCP protocol in front of swtpm, for tss.js (the Node SDK).

    tss.js's ``TpmTcpDevice`` speaks the simulator protocol: a handshake on the command port, power
    and NV signals on the platform port (command port + 1), then each command framed as
    ``u32 8 | u8 locality | u32 length | command``. swtpm answers none of the handshake or the
    platform signals, so against swtpm the client hangs (shared/reference/TPM.md). The adapter
    answers those itself and forwards each unframed command to swtpm's raw command socket,
    returning ``u32 length | response | u32 0``.
    """

    def __init__(self, tpm: SoftwareTpm) -> None:
        self.tpm = tpm
        self.port = _free_port_pair()
        self._servers = [
            _ThreadingServer(("127.0.0.1", self.port), _CommandHandler, tpm),
            _ThreadingServer(("127.0.0.1", self.port + 1), _PlatformHandler, tpm),
        ]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[socketserver.BaseRequestHandler], tpm: SoftwareTpm
    ):
        super().__init__(address, handler)
        self.tpm = tpm


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


class _CommandHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        tpm: SoftwareTpm = self.server.tpm  # type: ignore[attr-defined]
        client: socket.socket = self.request
        with socket.create_connection(("127.0.0.1", tpm.port)) as swtpm:
            try:
                while True:
                    (code,) = struct.unpack(">I", _read(client, 4))
                    if code == 15:  # HandShake: client version; answer server version, flags, ack
                        _read(client, 4)
                        client.sendall(struct.pack(">III", 1, 0, 0))
                    elif code == 8:  # SendCommand: locality, length, command
                        _read(client, 1)
                        (length,) = struct.unpack(">I", _read(client, 4))
                        swtpm.sendall(_read(client, length))
                        header = _read(swtpm, 6)
                        (size,) = struct.unpack(">I", header[2:6])
                        response = header + _read(swtpm, size - 6)
                        client.sendall(struct.pack(">I", len(response)) + response + struct.pack(">I", 0))
                    else:  # SessionEnd, Stop: nothing to forward
                        return
            except ConnectionError:
                return


class _PlatformHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        try:
            while True:
                _read(client, 4)  # power on, NV on, ...: swtpm is always on; acknowledge
                client.sendall(struct.pack(">I", 0))
        except ConnectionError:
            return
