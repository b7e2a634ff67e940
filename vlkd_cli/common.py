"""Shared CLI plumbing: consoles and turning VlkdError into a one-line message + exit code."""
import contextlib
import functools
import json
import logging
import os
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    """Plugin-setting warnings are for the user, not a developer: one line, no source location."""
    if category.__name__ == "PluginWarning":
        err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True, highlight=False)
        return
    _default(message, category, filename, lineno, file, line)


class _NoticeHandler(logging.Handler):
    """vlkd_core._runtime.notices: one dim line each, from rank 0 only."""

    def emit(self, record: logging.LogRecord) -> None:
        if os.environ.get("RANK", "0") == "0":
            console.print(f"[dim]{escape(record.getMessage())}[/]", soft_wrap=True, highlight=False)


@contextlib.contextmanager
def user_messages():
    """While a command runs: plugin warnings as one line, and vlkd_core's notices printed.
    Restored afterwards, so importing or calling vlkd_cli (tests, notebooks) changes nothing
    for the rest of the process."""
    logger, handler = logging.getLogger("vlkd"), _NoticeHandler()
    level, shown = logger.level, warnings.showwarning
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    warnings.showwarning = functools.partial(_show_warning, _default=shown)  # others as before the command
    try:
        yield
    finally:
        warnings.showwarning = shown
        logger.removeHandler(handler)
        logger.setLevel(level)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def handle_errors(fn):
    """Decorator: a VlkdError ends the command with its message and exit code, no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from vlkd_core.errors import VlkdError
        try:
            return fn(*args, **kwargs)
        except VlkdError as exc:
            fail(str(exc), exc.exit_code)
    return wrapper


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def parse_options(pairs: list[str] | None, flag: str) -> dict:
    """``["k=v", ...]`` -> dict (see :mod:`vlkd_core._host.grammar`); a bad pair ends the command."""
    from vlkd_core.errors import UsageError
    from vlkd_core._host.grammar import parse_options as parse
    try:
        return parse(pairs, flag)
    except UsageError as exc:
        fail(str(exc))


def command_url_trust(allow: bool, typed: list):
    """A context in which the pipe:/remote URLs the user typed on this command line (inside the
    parsed option values ``typed``) may run their command, when ``--allow-pipe`` was given.
    Without the flag such a typed URL is refused here, naming the flag; URLs from files (config,
    saved runs, checkpoints) are refused later by the dataset whatever the flags."""
    from vlkd_core.safety import OPT_IN_FLAG, allow_command_urls, command_strings
    found = [s for value in typed for s in command_strings(value)]
    if found and not allow:
        fail(f"'{found[0]}' runs a command (pipe: or remote URL): pass {OPT_IN_FLAG} to allow "
             "pipe:/remote shard URLs typed on this command line")
    return allow_command_urls(found)
