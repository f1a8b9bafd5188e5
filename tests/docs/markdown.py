"""The fenced code blocks of a Markdown document, each with the ``snippet`` directive before it.

A directive is an HTML comment on the last non-blank line before a fence, invisible when the
Markdown is rendered::

    <!-- snippet: KIND [ARGUMENTS] [(REASON)] -->

The kinds (what the runner in ``runner.py`` does with the block):

``output``            what the previous block printed: compared with what it really printed
``file NAME``         saved as NAME in the working directory, for a later block that runs it
``background``        started in the background (a server), stopped when the document ends
``sets NAME=path…``   an ``http`` block whose JSON answer's fields (``a.0.b``) become variables
``install (REASON)``  installs packages; not run, its package names are checked against the pinned
                      test environments the runner substitutes (the reason says which)
``skip (REASON)``     not run at all; the reason is required and such blocks are counted
``figure``            a ``text`` block that is a drawing or a summary, not something to run

A fence without a directive is run by its language: ``sh``, ``console``, ``python``, ``js``,
``http``, ``json``. Every other fence (``text``, no language, …) must carry a directive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RUN_LANGUAGES", "Block", "Directive", "DirectiveError", "parse_blocks"]

RUN_LANGUAGES = frozenset({"sh", "console", "python", "js", "http", "json"})
KINDS = frozenset({"output", "file", "background", "sets", "install", "skip", "figure"})
NEEDS_REASON = frozenset({"install", "skip"})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<ticks>`{3,})(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*snippet:\s*(?P<body>.*?)\s*-->\s*$")
_REASON = re.compile(r"\((?P<reason>[^()]*)\)\s*$")


class DirectiveError(ValueError):
    """A directive that is malformed or not followed by a fence."""


@dataclass(frozen=True)
class Directive:
    """``<!-- snippet: KIND ARGS (REASON) -->``."""

    kind: str
    args: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text, its directive if any."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    directive: Directive | None

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def kind(self) -> str:
        """What the runner does with it: the directive's kind, else the language."""
        return self.directive.kind if self.directive else self.language


def _parse_directive(body: str, where: str) -> Directive:
    reason = ""
    match = _REASON.search(body)
    if match:
        reason = match.group("reason").strip()
        body = body[: match.start()].strip()
    kind, *args = body.split()
    if kind not in KINDS:
        raise DirectiveError(f"{where}: unknown snippet directive {kind!r} (known: {sorted(KINDS)})")
    if kind in NEEDS_REASON and len(reason.split()) < 3:
        raise DirectiveError(f"{where}: `snippet: {kind}` needs a reason in parentheses")
    if kind == "file" and len(args) != 1:
        raise DirectiveError(f"{where}: `snippet: file` names exactly one file")
    if kind == "sets" and (not args or not all("=" in arg for arg in args)):
        raise DirectiveError(f"{where}: `snippet: sets` takes NAME=field pairs")
    return Directive(kind, tuple(args), reason)


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` in order; raises :class:`DirectiveError` on a stray directive."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: tuple[Directive, int] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        fence = _FENCE.match(line)
        if directive:
            if pending:
                raise DirectiveError(f"{path.name}:{pending[1]}: directive not followed by a fence")
            pending = (_parse_directive(directive.group("body"), f"{path.name}:{i + 1}"), i + 1)
        elif fence:
            ticks, language = fence.group("ticks"), fence.group("info").strip().split(" ")[0]
            end = i + 1
            while end < len(lines) and lines[end].strip() != ticks:
                end += 1
            if end == len(lines):
                raise DirectiveError(f"{path.name}:{i + 1}: unclosed fence")
            indent = len(fence.group("indent"))
            text = "\n".join(
                body[indent:] if body[:indent].isspace() else body for body in lines[i + 1 : end]
            )
            blocks.append(Block(path, i + 1, language, text + "\n", pending[0] if pending else None))
            pending = None
            i = end
        elif pending and line.strip():
            raise DirectiveError(f"{path.name}:{pending[1]}: directive not followed by a fence")
        i += 1
    if pending:
        raise DirectiveError(f"{path.name}:{pending[1]}: directive not followed by a fence")
    return blocks
