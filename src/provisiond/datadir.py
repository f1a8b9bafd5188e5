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
    in it (and from ``extra_files``, e.g. a keyring file kept elsewhere); how many were changed."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = 0
    for path in (data_dir, *_walk(data_dir), *extra_files):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not mode & _GROUP_OR_OTHER:
            continue
        path.chmod(stat.S_IMODE(mode) & ~_GROUP_OR_OTHER)
        changed += 1
    if changed:
        log.warning(
            "tightened %d entries of %s that other users could read or enter (now 0700/0600)",
            changed,
            data_dir,
        )
    return changed


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, files in os.walk(root):
        found += [Path(current, name) for name in (*dirs, *files)]
    return found
