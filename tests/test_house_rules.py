"""House rules a reviewer should never have to check by hand (see tests/README.md)."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "provisiond"
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    """A module that grows past the limit is split along a seam, never trimmed to fit."""
    too_long = {
        str(path.relative_to(SRC)): lines
        for path in SRC.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_every_public_module_says_what_it_exports() -> None:
    """``__all__`` on every module with public names, so what a module offers is visible at a glance."""
    missing = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
        and "migrations" not in path.parts
        and "__all__" not in path.read_text()
    ]
    assert missing == []


def test_no_command_group_prints_local_variables_in_a_traceback() -> None:
    """Typer's pretty tracebacks show every frame's locals by default: a CA key read by
    ``credential-policy create`` (or an outer key) would reach the terminal and its logs."""
    import typer

    from provisiond.cli.main import app

    def groups(app: typer.Typer) -> list[typer.Typer]:
        found = [app]
        for info in app.registered_groups:
            assert info.typer_instance is not None
            found += groups(info.typer_instance)
        return found

    every = groups(app)
    assert len(every) > 5  # dps, its credential-policy and certificate groups, partner, …
    assert [g.info.help for g in every if g.pretty_exceptions_show_locals] == []
