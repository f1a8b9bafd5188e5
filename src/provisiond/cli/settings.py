"""``provisiond settings …``: what a data dir records, and the one way to change it.

``init`` records the database URL and the ports in ``settings.json`` and never changes them
again; commands refuse a ``--database`` other than the recorded one. Changing a recorded value
is therefore a deliberate act, with its own command.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError

from provisiond.cli.common import JsonFlag, emit, fail, group, with_settings
from provisiond.config import Settings, read_settings_file, record_setting, redact_url, setting_name

__all__ = ["settings_app"]

settings_app = group("What the data dir's settings.json records, and changing it.")

Name = Annotated[str, typer.Argument(help="a setting, e.g. port, mqtt-port, database, webhook-allowlist")]


def _shown(name: str, value: Any) -> Any:
    """A value fit to print: a database URL loses its password."""
    return redact_url(value) if name == "database" and value else value


@settings_app.command("show")
@with_settings()
def settings_show(settings: Settings, as_json: JsonFlag = False) -> None:
    """The settings in effect (flags, PROVISIOND_*, settings.json, defaults) and what is recorded."""
    effective = {name: _shown(name, value) for name, value in settings.model_dump(mode="json").items()}
    recorded = {name: _shown(name, value) for name, value in read_settings_file(settings.data_dir).items()}
    human = "\n".join(
        f"{name} = {value}{'  (settings.json)' if name in recorded else ''}"
        for name, value in effective.items()
    )
    emit(as_json, {"settings": effective, "recorded": recorded}, human)


def _change(settings: Settings, text: str, value: str | None, as_json: bool) -> None:
    try:
        name = setting_name(text)
        before, after = record_setting(settings.data_dir, name, value)
    except ValidationError as exc:
        raise fail(f"bad value for {text}: {exc.errors()[0]['msg']}", 2) from None
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    before, after = _shown(name, before), _shown(name, after)
    emit(
        as_json,
        {"name": name, "value": after, "previous": before},
        f"{name}: {before} -> {after if value is not None else '(default)'}; restart serve to apply",
    )


@settings_app.command("set")
@with_settings()
def settings_set(settings: Settings, name: Name, value: str, as_json: JsonFlag = False) -> None:
    """Record NAME = VALUE in settings.json (VALUE as JSON when it parses, else a string).

    The one way to change what init recorded: a port, or the database URL (it does not move data).
    """
    _change(settings, name, value, as_json)


@settings_app.command("unset")
@with_settings()
def settings_unset(settings: Settings, name: Name, as_json: JsonFlag = False) -> None:
    """Drop NAME from settings.json: its default applies again."""
    _change(settings, name, None, as_json)
