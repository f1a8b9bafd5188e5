"""JSON text for what we store: one fast encoder and decoder for every module that writes or reads
JSON columns (enrollment documents, operation items and results, claims metadata).

Why msgspec rather than the json module: a 100,000-device operation encodes and decodes each item
several times, and msgspec does it several times faster. The text is the same compact JSON, except
that non-ASCII characters are written as UTF-8 rather than escaped; both read back alike.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["dumps", "loads"]

_encode = msgspec.json.Encoder().encode
loads = msgspec.json.Decoder().decode


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``."""
    return _encode(value).decode()
