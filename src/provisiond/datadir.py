"""The data directory is private to the service user: 0700, and every file in it 0600.

It holds the database (every key sealed, but still the fleet's records), the keyring of outer
keys, settings and TLS private keys. Two measures, because either alone leaves a gap:

- the process umask is set to 077 before anything is created, so every file and directory the
  service makes (SQLite creates ``-wal`` and ``-shm`` itself, later, with the database file's
  mode) is private whatever umask the operator's shell had;
- a data directory made by an older version, or loosened by hand, is tightened at start, with
  one log line naming how many entries were changed.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

__all__ = ["make_private", "private_umask"]

log = logging.getLogger(__name__)

_GROUP_OR_OTHER = stat.S_IRWXG | stat.S_IRWXO


def private_umask() -> None:
    """From now on this process creates files 0600 and directories 0700."""
    os.umask(0o077)


def make_private(data_dir: Path, extra_files: tuple[Path, ...] = ()) -> int:
    """Create ``data_dir`` 0700 if needed and take group and other access from it and everything
    in it (and from ``extra_files``, e.g. a keyring file kept elsewhere); how many were changed.

    Symbolic links are never followed (a link planted in the data dir cannot make us chmod its
    target); a data dir that is itself a link is tightened where it really is. A file this user
    may not change (a key file on a read-only mount, owned by another user) is reported, not fatal.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = data_dir.resolve()
    changed = 0
    for path in (root, *_walk(root), *extra_files):
        try:
            changed += _tighten(path)
        except OSError as exc:
            log.warning("cannot make %s private: %s", path, exc.strerror)
    if changed:
        log.warning(
            "tightened %d entries of %s that other users could read or enter (now 0700/0600)",
            changed,
            root,
        )
    return changed


def _tighten(path: Path) -> int:
    """Take group and other access from ``path`` through a descriptor that refused a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link: left alone
            return 0
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not mode & _GROUP_OR_OTHER:
            return 0
        os.fchmod(fd, stat.S_IMODE(mode) & ~_GROUP_OR_OTHER)
        return 1
    finally:
        os.close(fd)


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, files in os.walk(root):  # os.walk does not descend into linked dirs
        found += [Path(current, name) for name in (*dirs, *files)]
    return found
