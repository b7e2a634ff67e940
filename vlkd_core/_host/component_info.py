"""Registration metadata: the keywords ``register(name, factory, **metadata)`` accepts.

Typed and checked when a plugin registers, so a typo (``model_pattern=`` for
``model_patterns=``) is an error naming the plugin instead of a setting that silently does nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Union

from ..errors import PluginError, suggest

# A backbone family's model names: a list, a zero-argument callable returning them, a lazy
# "module:attr" naming such a callable or list, or None when any name is accepted.
Models = Union[Iterable[str], Callable[[], Iterable[str]], str, None]


@dataclass(frozen=True)
class ComponentInfo:
    """What a plugin may say about a component besides its factory (all optional).

    description:     one line for ``vlkd components list`` (default: the factory docstring's
                     first line)
    models:          backbone families: the model names offered (see ``Models``); None = any name
    model_patterns:  backbone families: fnmatch globs of open-ended names accepted as well
                     (e.g. ``"hf-hub:*"``)
    example:         keyword options building a tiny instance offline (used by the contract tests)
    evals:           datasets: the ``--eval`` specs of a run training on this data when the user
                     names none
    formula:         the objective in one line (default: the factory's ``formula`` attribute)
    paper:           the reference, e.g. ``arXiv:2101.04731`` (default: the factory's ``paper``)
    per_parameter:   optimizers: a step of one parameter reads only that parameter's gradient
                     and state (AdamW, SGD, Lion; not LAMB's global gradient norm), so
                     ``--optimizer-in-backward`` may run one instance per parameter
    """

    description: str = ""
    models: Models = None
    model_patterns: tuple[str, ...] = ()
    example: Mapping[str, Any] | None = None
    evals: tuple[str, ...] = ()
    formula: str = ""
    paper: str = ""
    per_parameter: bool = False

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any], where: str) -> ComponentInfo:
        """Check ``register()``'s keywords; ``where`` ("plugin 'p' loss 'x'") starts the one-line
        PluginError raised for an unknown key or a value of the wrong shape."""
        known = [f.name for f in fields(cls)]
        for key in keywords:
            if key not in known:
                hint = suggest(key, known)
                raise PluginError(f"{where}: unknown metadata '{key}'"
                                 + (f"; did you mean {', '.join(hint)}?" if hint else "")
                                 + f" (accepted: {', '.join(known)})")
        values = dict(keywords)
        for key in ("description", "formula", "paper"):
            if not isinstance(values.get(key, ""), str):
                raise PluginError(f"{where}: metadata '{key}' must be a str, "
                                  f"not {type(values[key]).__name__}")
        if not isinstance(values.get("per_parameter", False), bool):
            raise PluginError(f"{where}: metadata 'per_parameter' must be a bool, "
                              f"not {type(values['per_parameter']).__name__}")
        for key in ("model_patterns", "evals"):
            if key in values:
                values[key] = _strings(values[key], f"{where}: metadata '{key}'")
        example = values.get("example")
        if example is not None:
            if not isinstance(example, Mapping):
                raise PluginError(f"{where}: metadata 'example' must be a dict of options, "
                                f"not {type(example).__name__}")
            values["example"] = MappingProxyType(dict(example))
        return cls(**values)

    def given(self) -> dict[str, Any]:
        """The fields set to something other than their default (what the plugin passed)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}


def _strings(value: Any, what: str) -> tuple[str, ...]:
    # a bare string would otherwise be taken character by character
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PluginError(f"{what} must be a list of str, not {type(value).__name__}")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise PluginError(f"{what} must be a list of str")
    return items
