"""Which data URLs may run a command.

webdataset opens ``pipe:CMD`` by running CMD in a shell, and remote schemes (``http(s)://``,
``gs://``, ``scp://``, ``ais://``...) by running ``curl``/``gsutil``. A run folder or checkpoint is
data, safe to receive from someone else, so such URLs are honoured only when the user typed them
on *this* command line together with ``--allow-pipe``; a URL read from a saved config, a
checkpoint's ``meta.json`` or a config file is refused, whatever flags are given.

The CLI declares the trusted strings (the exact option values it parsed from the command line)
with :func:`allow_command_urls`; Python callers do the same around their own calls::

    with vlkd.safety.allow_command_urls(["pipe:curl -s https://host/shard-{000..009}.tar"]):
        vlkd.build_dataset("webdataset", path="pipe:curl -s https://host/shard-{000..009}.tar")
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import UsageError

OPT_IN_FLAG = "--allow-pipe"
_trusted: list[str] = []  # exact option values typed on the command line with the opt-in


def needs_command(url: str) -> bool:
    """True for a URL webdataset would open by running a program (``pipe:``, any ``scheme:``
    other than ``file:``); plain local paths are opened as files."""
    text = str(url).strip()
    if text.startswith("pipe:"):
        return True
    scheme, sep, _ = text.partition(":")
    # a scheme is letters/digits/+-. of length > 1 (so Windows drive letters stay local paths)
    if not sep or len(scheme) < 2 or not scheme[0].isalpha():
        return False
    if not all(c.isalnum() or c in "+-." for c in scheme):
        return False
    return scheme.lower() != "file"


def command_strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (nested dicts/lists, ``::``-joined patterns) that would run
    a command."""
    if isinstance(value, str):
        if any(needs_command(part) for part in value.split("::")):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from command_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from command_strings(item)


@contextlib.contextmanager
def allow_command_urls(values: Iterable[str]) -> Iterator[None]:
    """Trust exactly these option values (as typed by the user) while the block runs."""
    added = [str(v) for v in values]
    _trusted.extend(added)
    try:
        yield
    finally:
        for value in added:
            _trusted.remove(value)


def is_trusted(value: str) -> bool:
    return str(value) in _trusted


def check_url_option(value: str, where: str) -> None:
    """Refuse ``value`` (a path option, possibly ``::``-joined) if it would run a command and was
    not typed on the command line with the opt-in. The message names the URL and the flag."""
    for part in str(value).split("::"):
        if needs_command(part) and not is_trusted(value):
            raise UsageError(
                f"{where}: refusing '{part.strip()}': a pipe:/remote shard URL runs a command; it is "
                f"accepted only when typed on the command line together with {OPT_IN_FLAG} (never "
                "from a config file, saved run or checkpoint)")
