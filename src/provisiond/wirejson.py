"""The one JSON decoder for every request body, HTTP or MQTT, in every dialect.

It lives outside ``api/`` because JSON from outside also comes back as answers: the custom
allocation webhook's answer is parsed with the same limits.

A request body is hostile until parsed, so the limits are applied here, once, before any dialect
sees a value:

- nesting deeper than ``MAX_DEPTH`` is refused before the parser runs (a parser recursing through
  1,000 levels raises ``RecursionError``, which no dialect expects);
- ``NaN``, ``Infinity`` and numbers that overflow a double are not JSON (RFC 8259) and are
  refused, where Python's ``json`` module would accept them and store them as ``null``;
- a body that is not UTF-8 JSON, or not of the shape a typed decoder expects, is refused;
- a string holding NUL (``\u0000``) is refused: PostgreSQL can store it in no text or JSON
  column, so on PostgreSQL it would fail at the write, and on SQLite be kept (the same request
  must get the same answer on both).

Every refusal is ``MalformedJson``; each dialect renders it as its own 400.

msgspec does the parsing: it rejects non-finite numbers by itself, decodes straight into a
dialect's wire structs, and is several times faster than ``json`` on the 32 MiB bulk bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar, overload

import msgspec

__all__ = ["MAX_DEPTH", "MalformedJson", "decode", "too_deep"]

MAX_DEPTH = 64

T = TypeVar("T")


class MalformedJson(ValueError):
    """The body is not JSON, is nested too deeply, holds a non-finite number, or has the wrong shape."""


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # an escape for NUL, not an escaped backslash
_PARENS = bytes.maketrans(b"[]{}", b"()()")  # the kind of bracket does not change the depth
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_DEEPER_RUN = b"(" * (MAX_DEPTH + 1)
_STRING = re.compile(rb'"[^"]*"')  # in a skeleton of quotes and brackets only


def _skeleton(body: bytes) -> bytes:
    """The brackets of ``body`` outside strings, as ``(`` and ``)``, with C-speed byte operations.

    After escapes are dropped, quotes alternate open/close. A string holding no bracket leaves
    ``""`` in the skeleton, so when every run of quotes has even length (nothing is left after
    deleting ``""`` pairs) no bracket lies inside a string and the quotes can simply go; only a
    body with brackets inside strings pays for the exact split.
    """
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)  # an escaped quote must not end a string
    skeleton = body.translate(_PARENS, _NOT_STRUCTURE)
    brackets = skeleton.replace(b'""', b"")
    if b'"' not in brackets:
        return brackets
    return _STRING.sub(b"", skeleton)  # one pass, no list of pieces: memory stays the skeleton's


def too_deep(body: bytes) -> bool:
    """Whether ``body`` nests arrays and objects more than ``MAX_DEPTH`` levels deep.

    Each pass deletes the innermost pairs, so ``MAX_DEPTH`` passes empty the skeleton of any
    body nested at most that deep; a run of more openers than that settles it at once. Unbalanced
    brackets stop the passes early; the parser then reports the body as malformed.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    skeleton = _skeleton(body)
    for _ in range(MAX_DEPTH):
        if _DEEPER_RUN in skeleton:
            return True
        inner = skeleton.replace(b"()", b"")
        if not inner or len(inner) == len(skeleton):
            return False
        skeleton = inner
    return bool(skeleton)


# Where a number could overflow a double: a large exponent or a very long run of digits. Only
# a body with such a candidate (in a number or in a string alike) pays for the exact check.
_OVERFLOW_CANDIDATE = re.compile(rb"[0-9.][eE][+-]?0*[0-9]{3}|[0-9]{300}")
_untyped = msgspec.json.Decoder()


def _check_numbers(body: bytes) -> None:
    """Refuse numbers that overflow a double anywhere in the body, even in a field a typed
    decoder would skip unread (msgspec checks the range only of the values it converts)."""
    if _OVERFLOW_CANDIDATE.search(body):
        _untyped.decode(body)


_decoders: dict[tuple[Any, Any], msgspec.json.Decoder[Any]] = {}


@overload
def decode(body: bytes, model: type[T], *, dec_hook: Callable[[type, Any], Any] | None = None) -> T: ...
@overload
def decode(body: bytes, model: None = None, *, dec_hook: Callable[[type, Any], Any] | None = None) -> Any: ...
def decode(body: bytes, model: Any = None, *, dec_hook: Callable[[type, Any], Any] | None = None) -> Any:
    """``body`` parsed (into ``model`` when given, else into plain Python values).

    Raises ``MalformedJson`` for everything a client can get wrong; never ``RecursionError``.
    """
    if too_deep(body):
        raise MalformedJson(f"JSON is nested more than {MAX_DEPTH} levels deep")
    if b"\\u0000" in body and _NUL.search(body):
        raise MalformedJson("a string holds a NUL character (\\u0000), which no field takes")
    key = (model, dec_hook)
    decoder = _decoders.get(key)
    if decoder is None:
        decoder = _decoders[key] = msgspec.json.Decoder(Any if model is None else model, dec_hook=dec_hook)
    try:
        if model is not None:
            _check_numbers(body)
        return decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError (wrong types, out-of-range numbers) too
        raise MalformedJson(str(exc)) from exc
    except RecursionError as exc:  # unreachable after too_deep; kept so no body can ever 500
        raise MalformedJson(f"JSON is nested more than {MAX_DEPTH} levels deep") from exc
