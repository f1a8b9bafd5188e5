"""Progress bars for people: shown only when stdout is a terminal and ``--json`` is not given.

A script reading stdout (or a pipe, a file, CI) gets exactly the output the operator contract
describes and nothing else, so the bar is off there; rich draws it on the terminal otherwise.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["progress_bar", "wants_progress"]


def wants_progress(as_json: bool) -> bool:
    """A bar only for a person: stdout is a terminal and no ``--json``."""
    return not as_json and sys.stdout.isatty()


def progress_bar(as_json: bool) -> Progress:
    """A bar with a count and the elapsed time; disabled (draws nothing) unless ``wants_progress``."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stdout),
        disable=not wants_progress(as_json),
        transient=False,
    )
