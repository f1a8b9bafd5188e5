"""``python -m provisiond`` is the ``provisiond`` command."""

from provisiond.cli.main import app

app()
