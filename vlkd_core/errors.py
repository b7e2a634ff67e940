"""Errors the user can act on. Each carries the exit code the CLI returns, by one policy for
every command: 2 when what the user typed or gave is wrong (flags, config files, data, run
folders, checkpoints, feature stores, target folders), 1 when work that was fine to ask for
failed (the disk filled up, a folder is read-only, the loss diverged, a plugin is broken), 3 when
a run folder is in use by another training (:mod:`.training.runlock`), 128 + N after signal N."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

from ._host.kinds import PLURAL


class VlkdError(Exception):
    """Base class: a one-line message naming the flag, file, row or plugin at fault."""

    exit_code = 1


class UsageError(VlkdError):
    """Bad names, specs, options or combinations (exit code 2, like click/argparse)."""

    exit_code = 2


class UnknownComponentError(UsageError, KeyError):
    def __init__(self, kind: str, name: str, candidates: Iterable[str], where: str = "",
                 disabled_plugin: str | None = None):
        self.kind, self.name = kind, name
        self.suggestions = suggest(name, candidates)
        if disabled_plugin is not None:
            super().__init__(f"unknown {kind} '{name}': provided by plugin {disabled_plugin}, which is "
                             "disabled (VLKD_DISABLE_PLUGINS or --disable-plugin)")
            return
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        place = f" in {where}" if where else ""
        see = {"plugin": "vlkd plugins list", "model": "vlkd components list backbones"}.get(
            kind, f"vlkd components list {PLURAL[kind]}" if kind in PLURAL else "")
        super().__init__(f"unknown {kind} '{name}'{place}{hint}" + (f" (see `{see}`)" if see else ""))

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class ComponentCollisionError(VlkdError):
    """Two distributions tried to register the same component name."""


class PluginError(VlkdError):
    """A plugin failed to import or register."""


class DataError(VlkdError):
    """Unreadable or malformed input data (names the file and row): bad input, exit code 2."""

    exit_code = 2


class StorageError(VlkdError):
    """The file system refused a write: disk full, read-only, no permission (names the file)."""


class NonFiniteLossError(VlkdError):
    """Training produced NaN/Inf."""


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]
