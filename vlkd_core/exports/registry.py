"""Export formats by name. Each format says whether it fits a loaded model (``fits`` returns None,
or why not in a few words) and writes into an empty folder (``write``). A plugin or a user can
add one with :func:`register_format`; ``vlkd export --format NAME`` then offers it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError, suggest


@dataclass(frozen=True)
class Format:
    name: str
    summary: str                              # one line for --help and errors
    fits: Callable[[Any], str | None]         # LoadedModel -> None, or why it does not fit
    write: Callable[[Any, Path], dict]        # (LoadedModel, empty folder) -> extra export info


FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> None:
    """Add a format; registering another format under a taken name is an error."""
    if fmt.name in FORMATS and FORMATS[fmt.name] != fmt:
        raise UsageError(f"export format '{fmt.name}' is already registered")
    FORMATS[fmt.name] = fmt


def get_format(name: str) -> Format:
    if name not in FORMATS:
        hint = suggest(name, FORMATS)
        raise UsageError(f"--format '{name}' is not one of {', '.join(FORMATS)}"
                         + (f"; did you mean {', '.join(hint)}?" if hint else ""))
    return FORMATS[name]


def fitting(model: Any) -> list[str]:
    """Names of the formats this model can be exported to."""
    return [name for name, fmt in FORMATS.items() if fmt.fits(model) is None]
