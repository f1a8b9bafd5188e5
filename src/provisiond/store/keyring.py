"""The outer keys that seal every secret the database holds, and the sealing itself.

A secret (a policy key, a device's symmetric key, and every secret a later feature stores) is
written to the database only as ``v1.<key id>.<base64(nonce | AES-256-GCM ciphertext)>``,
with the row's identity as associated data, so a sealed value copied onto another row does not
open. The outer keys never enter the database: they live in a keyring file (``secrets.key`` in
the data dir, or ``PROVISIOND_SECRETS_KEY_FILE``), mode 0600, as JSON::

    {"current": "<key id>", "keys": {"<key id>": "<base64 of 32 bytes>", ...}}

The current key seals; any key in the file opens. A rotation (services/secrets.py) adds a new
current key, reseals every row under it, then drops the old key. Other processes see the new
file without a restart: sealing re-reads it when it changed (checked at most once a second),
and opening a value sealed under a key it does not know re-reads it at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from provisiond.errors import ProvisiondError

log = logging.getLogger(__name__)

__all__ = ["PREFIX", "Keyring", "KeyringError", "SecretUnreadable", "key_id_of"]

PREFIX = "v1."
_NONCE = 12
_REFRESH_SECONDS = 1.0


class KeyringError(ProvisiondError):
    """The keyring file is missing, unreadable or malformed (a one-line error at start)."""


class SecretUnreadable(ProvisiondError):
    """A sealed value that no known key opens: a wrong keyring, or a value moved between rows."""


def key_id_of(sealed: str) -> str:
    """The id of the key a value was sealed with."""
    if not sealed.startswith(PREFIX):
        raise SecretUnreadable("the value is not sealed")
    return sealed[len(PREFIX) :].split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class _Ring:
    current: str
    keys: Mapping[str, AESGCM]
    raw: Mapping[str, bytes]


def _new_key_id() -> str:
    return f"k{time.strftime('%Y%m%d', time.gmtime())}{secrets.token_hex(3)}"


class Keyring:
    """The outer keys of one keyring file (or of memory, for tests)."""

    def __init__(self, path: Path | None, ring: _Ring) -> None:
        self.path = path
        self._ring = ring
        self._checked = time.monotonic()
        self._stamp = _stamp(path)

    # -- opening and creating ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """The keyring in ``path``; ``KeyringError`` if it is missing or not a keyring."""
        return cls(path, _read(path))

    @classmethod
    def create(cls, path: Path) -> Keyring:
        """A new keyring with one fresh key at ``path``, mode 0600; if another process created
        the file meanwhile (two commands starting on a new data dir), that keyring, not a second."""
        kid = _new_key_id()
        raw = {kid: AESGCM.generate_key(bit_length=256)}
        try:
            _write(path, kid, raw, exclusive=True)
        except KeyringError:
            if not path.exists():
                raise
        return cls.load(path)

    @classmethod
    def in_memory(cls) -> Keyring:
        """A keyring that lives only in this process (tests and throwaway databases)."""
        kid = _new_key_id()
        raw = {kid: AESGCM.generate_key(bit_length=256)}
        return cls(None, _Ring(kid, {kid: AESGCM(raw[kid])}, raw))

    # -- sealing -------------------------------------------------------------------------------------

    @property
    def current(self) -> str:
        """The id of the key new values are sealed with."""
        self._refresh()
        return self._ring.current

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ring.keys)

    def seal(self, plaintext: str, row: str) -> str:
        """``plaintext`` sealed under the current key, bound to ``row`` (e.g. ``dps_policies/owner``)."""
        self._refresh()
        kid = self._ring.current
        nonce = os.urandom(_NONCE)
        sealed = self._ring.keys[kid].encrypt(nonce, plaintext.encode(), row.encode())
        return f"{PREFIX}{kid}.{binascii.b2a_base64(nonce + sealed, newline=False).decode()}"

    def open(self, sealed: str, row: str) -> str:
        """The plaintext of a value sealed for ``row``; ``SecretUnreadable`` if no key opens it.

        On the read path of every enrollment (a query page opens a thousand), so it parses with
        one ``rpartition`` and decodes with ``binascii`` (a fifth of ``urlsafe_b64decode``'s time).
        """
        head, _, blob = sealed.rpartition(".")
        if not head.startswith(PREFIX):
            raise SecretUnreadable("the value is not sealed")
        kid = head[len(PREFIX) :]
        aead = self._ring.keys.get(kid)
        if aead is None:
            self._refresh(force=True)  # a rotation elsewhere may have added it
            aead = self._ring.keys.get(kid)
            if aead is None:
                raise SecretUnreadable(f"no key {kid!r} in the keyring {self.path or '(memory)'}")
        try:
            data = binascii.a2b_base64(blob, strict_mode=True)
            return aead.decrypt(data[:_NONCE], data[_NONCE:], row.encode()).decode()
        except (InvalidTag, binascii.Error, IndexError, ValueError) as exc:
            raise SecretUnreadable(f"a secret of {row} does not open with key {kid!r}") from exc

    # -- rotation ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def rotation_lock(self) -> Iterator[None]:
        """Held for a whole rotation: a second ``secrets rotate`` on the same key file is refused
        (two at once would each write a new key, and values resealed under one would be lost)."""
        if self.path is None:
            yield
            return
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise KeyringError(f"another rotation of {self.path} is running") from None
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def begin_rotation(self) -> str:
        """Add a new current key (keeping every old one) and write the file; its id.

        When the file already holds more than one key, a rotation was interrupted: it is resumed
        with the current key, and no new key is made.
        """
        self._refresh(force=True)
        if len(self._ring.raw) > 1:
            return self._ring.current
        kid = _new_key_id()
        raw = {kid: AESGCM.generate_key(bit_length=256), **self._ring.raw}
        self._replace(kid, raw)
        return kid

    def finish_rotation(self) -> list[str]:
        """Drop every key but the current one from the file; the ids dropped."""
        self._refresh(force=True)
        current = self._ring.current
        retired = [kid for kid in self._ring.raw if kid != current]
        self._replace(current, {current: self._ring.raw[current]})
        return retired

    def _replace(self, current: str, raw: dict[str, bytes]) -> None:
        if self.path is not None:
            _write(self.path, current, raw, exclusive=False)
        self._ring = _Ring(current, {kid: AESGCM(key) for kid, key in raw.items()}, raw)
        self._stamp = _stamp(self.path)

    def _refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed since it was read (at most once a second unless forced)."""
        if self.path is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < _REFRESH_SECONDS:
            return
        self._checked = now
        stamp = _stamp(self.path)
        if stamp != self._stamp:
            try:
                self._ring = _read(self.path)
            except KeyringError as exc:
                # Keep serving with the keys already known; a rotation's values stay unreadable
                # here until the file is fixed, which the log says.
                log.warning("keeping the outer keys read before: %s", exc.message)
                return
            self._stamp = stamp


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _read(path: Path) -> _Ring:
    try:
        data = json.loads(path.read_text())
        current = data["current"]
        raw = {kid: base64.b64decode(value, validate=True) for kid, value in data["keys"].items()}
    except FileNotFoundError:
        raise KeyringError(f"the outer key file {path} does not exist") from None
    except OSError as exc:
        raise KeyringError(f"the outer key file {path} cannot be read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise KeyringError(f"the outer key file {path} is not a provisiond keyring") from None
    if current not in raw or any(len(key) != 32 for key in raw.values()):
        raise KeyringError(f"the outer key file {path} is not a provisiond keyring")
    return _Ring(current, {kid: AESGCM(key) for kid, key in raw.items()}, raw)


def _write(path: Path, current: str, raw: Mapping[str, bytes], *, exclusive: bool) -> None:
    """Write the keyring atomically, mode 0600: a private temporary file, fsync, then a rename
    (``exclusive``: a hard link, which fails if another process created the file first).

    A rewrite keeps the owner of the file it replaces, so a rotation run as root does not leave
    a key file the service user can no longer read.
    """
    text = json.dumps(
        {"current": current, "keys": {kid: base64.b64encode(key).decode() for kid, key in raw.items()}}
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    owner = None if exclusive else _owner(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        try:
            os.fchmod(fd, 0o600)
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                os.fchown(fd, *owner)
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyringError(f"the outer key file {path} exists already") from None
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _owner(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_uid, info.st_gid)
