"""Options every command takes, and how commands print and fail."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import pwd
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from provisiond import logs
from provisiond.config import Settings, database_conflict, load_settings
from provisiond.datadir import make_private, private_umask
from provisiond.domain.audit import Actor, ActorKind, AuditContext, Transport
from provisiond.errors import ProvisiondError
from provisiond.services import audit
from provisiond.services.secrets import KeyringError, open_database
from provisiond.store.db import Database

__all__ = [
    "CommandFailed",
    "DataDir",
    "DatabaseUrl",
    "JsonFlag",
    "configure_logging",
    "emit",
    "fail",
    "group",
    "operator_context",
    "run",
    "settings_from",
    "with_db",
    "with_settings",
]

T = TypeVar("T")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="data directory [default: ./provisiond-data]", show_default=False),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="database URL (postgresql://…) [default: the one recorded at init, else SQLite in the data dir]",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print one JSON object and nothing else")]


def group(help: str) -> typer.Typer:
    """A command group, with help in plain text.

    Typer's rich help (click 8.5) shows a flag as ``--json <bool>``, as if it took a value, and
    reads ``[default: …]`` in our help texts as markup and drops it; plain help shows both right.
    Tracebacks never show local variables: a CA key or a password read by a command would be
    printed with them (older Typer releases showed them by default; said here, not left to it).
    """
    return typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_show_locals=False,
        help=help,
    )


class CommandFailed(Exception):
    """A command failed: one line on stderr, ``error: …``, and the exit status (1, or 2 for bad
    settings). With ``--json`` the command also prints ``{"error": …}`` on stdout, so a script
    reading stdout always gets one JSON object. Raised inside a command, handled by
    ``with_settings``, which every command goes through."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = code


def fail(message: str, code: int = 1) -> CommandFailed:
    """The exception to raise for a failed command (``raise fail(...)``)."""
    return CommandFailed(message, code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; domain errors become a one-line message and exit status 1, a missing or
    wrong outer key file exit status 2 (like other bad settings: nothing can start with it)."""
    try:
        return asyncio.run(coro)
    except KeyringError as exc:
        raise fail(exc.message, 2) from None
    except ProvisiondError as exc:
        raise fail(exc.message) from None


async def with_db(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Open the settings' database (brought to the current schema) for one action, then close it.

    Every file the command creates is private, and a data dir left readable by others is
    tightened first (datadir.py).
    """
    private_umask()
    make_private(settings.data_dir, (settings.keyring_path,))
    db = await open_database(settings, pool_size=2)
    try:
        return await action(db)
    finally:
        await db.dispose()


def emit(as_json: bool, data: dict[str, Any], human: str) -> None:
    """Print ``data`` as one JSON object with ``--json``, else the human-readable text."""
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        typer.echo(human)


def with_settings(*flag_names: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give a command the ``settings: Settings`` parameter, built in this one place.

    The command is registered with two more options, ``--data-dir`` and ``--database``, which
    every command takes after its subcommand (the operator contract). The options named in
    ``flag_names`` (``--port``, say) are the command's own options that also go into the settings.
    """

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(fn, eval_str=True)  # typer reads resolved annotations
        own = [p for name, p in signature.parameters.items() if name != "settings"]
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        shared = [
            inspect.Parameter("data_dir", kind, default=None, annotation=DataDir),
            inspect.Parameter("database", kind, default=None, annotation=DatabaseUrl),
        ]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> T:
            try:
                flags = {name: kwargs[name] for name in flag_names}  # the command gets them too
                settings = settings_from(kwargs.pop("data_dir"), kwargs.pop("database"), **flags)
                with audit.acting(operator_context()):  # every change the command makes is by this user
                    return fn(settings=settings, **kwargs)
            except CommandFailed as exc:
                typer.echo(f"error: {exc.message}", err=True)
                if kwargs.get("as_json"):
                    sys.stdout.write(json.dumps({"error": exc.message}) + "\n")
                raise typer.Exit(exc.exit_code) from None

        # Typer reads the parameters from the signature and the annotations: show it the
        # command's own options (minus ``settings``) followed by the two shared ones.
        command.__signature__ = signature.replace(parameters=own + shared)  # type: ignore[attr-defined]
        command.__annotations__ = {
            **{name: hint for name, hint in fn.__annotations__.items() if name != "settings"},
            "data_dir": DataDir,
            "database": DatabaseUrl,
        }
        return command

    return decorate


def operator_context() -> AuditContext:
    """The audit origin of a CLI command: the OS user, a fresh request id, no address."""
    return AuditContext(Actor(ActorKind.OPERATOR, _os_user()), uuid.uuid4().hex, None, Transport.CLI)


def _os_user() -> str:
    """The account the command runs as, from the password database by its effective uid: not
    ``LOGNAME``/``USER`` (which anyone can set), so the trail names who really acted."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid with no entry (a container's arbitrary uid)
        return f"uid-{os.geteuid()}"


def settings_from(data_dir: Path | None, database: str | None, **flags: Any) -> Settings:
    """The settings, or a one-line error naming each bad value (exit 2) instead of a traceback.

    A database other than the one recorded at ``init`` is such a bad value: used, it would be
    created empty and the command would answer from it as if the data dir held nothing.
    """
    try:
        settings = load_settings(data_dir=data_dir, database=database, **flags)
        conflict = database_conflict(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise fail(f"bad settings (flags, PROVISIOND_* or settings.json): {problems}", 2) from None
    except json.JSONDecodeError as exc:
        raise fail(f"settings.json in the data dir is not JSON: {exc}", 2) from None
    except ValueError as exc:  # the settings file holds JSON that is not an object
        raise fail(str(exc), 2) from None
    if conflict:
        raise fail(conflict, 2)
    return settings


def _request_fields() -> dict[str, Any]:
    """The audit context's request id and actor, for each JSON log line (``logs.py``)."""
    context = audit.current()
    return {"requestId": context.request_id, "actor": str(context.actor)}


def configure_logging(settings: Settings) -> None:
    """Logging for a long-running command (``serve``, ``worker``) as the settings ask."""
    logs.configure(settings.log_level, settings.log_format, _request_fields)
