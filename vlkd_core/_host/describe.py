"""What `vlkd components show` prints about a factory: its docstring as plain text and every
option it accepts, including those a class forwards to its bases through ``**options``."""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

# :role:`text`, :role:`~pkg.mod.Name`, :role:`title <target>`
_ROLE = re.compile(r":[\w.+-]+(?::[\w.+-]+)*:`([^`]*)`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*", re.S)
_INTERPRETED = re.compile(r"(?<![\w`])`([^`]+)`_{0,2}(?![\w`])")
_DIRECTIVE = re.compile(r"^\.\.\s+([\w-]+)::\s*", re.M)
_ITEM = re.compile(r"^(?:[-*+•] |\d+[.)] |\S+:\s{2,})")  # bullets, "1. ", "name:   text" rows


def _role_text(match: re.Match) -> str:
    text = match.group(1)
    titled = re.fullmatch(r"(.*?)\s*<[^<>]*>", text, re.S)
    if titled and titled.group(1):
        return titled.group(1)
    return text.rsplit(".", 1)[-1] if text.startswith("~") else text


def plain_text(doc: str) -> str:
    """A reST docstring as terminal text: roles and literals become their text, a paragraph's
    lines are joined (the terminal wraps them), list items, aligned rows and indented blocks
    keep their line breaks."""
    text = _DIRECTIVE.sub(lambda m: m.group(1).capitalize() + ": ", inspect.cleandoc(doc))
    text = _ROLE.sub(_role_text, text)
    text = _LITERAL.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = re.sub(r"\s*::$", ":", text, flags=re.M)  # "Example::" opens a literal block
    return "\n\n".join(_join_lines(block) for block in re.split(r"\n\s*\n", text.strip()))


def _join_lines(block: str) -> str:
    lines: list[str] = []
    for line in block.splitlines():
        if not lines or line[:1].isspace() or _ITEM.match(line) or lines[-1].endswith(":"):
            lines.append(line.rstrip())
        else:
            lines[-1] = f"{lines[-1]} {line.strip()}"
    return "\n".join(lines)


@dataclass(frozen=True)
class Option:
    name: str
    default: Any  # inspect.Parameter.empty when required
    declared_by: str  # the class (or function) whose signature declares it

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def options(factory: Any) -> list[Option]:
    """Keyword options of a factory. For a class: its ``__init__``'s, then, while an
    ``__init__`` takes ``**options``, those of the next ``__init__`` up the MRO (the way
    :func:`vlkd_core._host.typecheck.hints` collects annotations), the most derived declaration winning."""
    if not inspect.isclass(factory):
        return _signature_options(factory, getattr(factory, "__qualname__", repr(factory)), skip=0)
    found: dict[str, Option] = {}
    for klass in factory.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        init = vars(klass)["__init__"]
        for option in _signature_options(init, klass.__name__, skip=1):
            found.setdefault(option.name, option)
        if not _forwards(init):
            break
    return list(found.values())


def _signature_options(fn: Any, owner: str, skip: int) -> list[Option]:
    try:
        params = list(inspect.signature(fn).parameters.values())[skip:]
    except (TypeError, ValueError):  # builtins without a signature
        return []
    return [Option(p.name, p.default, owner) for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _forwards(fn: Any) -> bool:
    try:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
