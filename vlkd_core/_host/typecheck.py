"""Checking option values against their declared annotations (TrainConfig fields, factory
parameters), so a wrong type is a one-line UsageError before any work instead of a traceback
later.

Rules: ``float`` accepts an int; ``int`` does not accept a bool or a float with a fraction
(``2.0`` becomes ``2``); a ``str`` option accepts a number or bool (the command line parses
``model=18`` as JSON) and gets its text; ``Path`` accepts a str; containers are checked element by
element; annotations this module does not understand accept anything (the component decides).
"""
from __future__ import annotations

import builtins
import inspect
import math
import numbers
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_MISMATCH = object()


def hints(target: Any) -> dict[str, Any]:
    """``typing.get_type_hints`` of a function or class ``__init__`` (all classes of its MRO for
    classes forwarding ``**options`` to a base), ``{}`` when they cannot be resolved."""
    targets = []
    if inspect.isclass(target):
        targets = [klass.__init__ for klass in reversed(target.__mro__) if "__init__" in vars(klass)]
    else:
        targets = [target]
    found: dict[str, Any] = {}
    for fn in targets:
        try:
            found.update(typing.get_type_hints(fn))
        except Exception:  # noqa: BLE001 -- unresolvable annotations: no checking for this one
            continue
    found.pop("return", None)
    return found


def coerce(value: Any, annotation: Any, one_for_many: bool = False) -> Any:
    """``value`` converted where harmless (see module docstring), or raise TypeError.
    ``one_for_many``: a single value fitting a list's element type passes as given (components
    wrap ``sets=simlex999`` themselves)."""
    out = _coerce(value, annotation, one_for_many)
    if out is _MISMATCH:
        raise TypeError(describe(annotation))
    return out


def _coerce(value: Any, ann: Any, one: bool = False) -> Any:
    if ann is Any or ann is inspect.Parameter.empty or ann is object:
        return value
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(ann), one)
    if origin is typing.Literal:
        return value if value in typing.get_args(ann) else _MISMATCH
    if ann in _SCALARS:
        return _SCALARS[ann](value)
    if ann is Path or (inspect.isclass(ann) and issubclass(ann, Path)):
        return value if isinstance(value, (str, Path)) else _MISMATCH
    if origin in (list, tuple, set, frozenset, Sequence, typing.Sequence) or ann in (list, tuple):
        return _coerce_sequence(value, origin, typing.get_args(ann), one)
    if origin in (dict, Mapping, typing.Mapping) or ann is dict:
        return _coerce_mapping(value, typing.get_args(ann), one)
    if inspect.isclass(ann) and getattr(builtins, ann.__name__, None) is ann:  # int, str, bytes, ...
        return value if isinstance(value, ann) else _MISMATCH
    return value  # a class or form we do not check (callables, tensors, ...)


def _coerce_union(value: Any, args: tuple, one: bool) -> Any:
    if value is None:
        return None if type(None) in args else _MISMATCH
    # exact matches first, so `int | str` keeps 3 as an int
    for arg in sorted(args, key=lambda a: a is not type(value)):
        if arg is type(None):
            continue
        out = _coerce(value, arg, one)
        if out is not _MISMATCH:
            return out
    return _MISMATCH


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return _MISMATCH
    if isinstance(value, numbers.Integral):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return _MISMATCH


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _MISMATCH
    if isinstance(value, int):
        return float(value)
    return value if isinstance(value, numbers.Real) else _MISMATCH


def _to_str(value: Any) -> Any:
    if isinstance(value, (str, os.PathLike)):  # a Path where a path string is expected
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _MISMATCH


_SCALARS = {
    type(None): lambda value: None if value is None else _MISMATCH,
    bool: lambda value: value if isinstance(value, bool) else _MISMATCH,
    int: _to_int, float: _to_float, str: _to_str,
}


def _coerce_sequence(value: Any, origin: Any, args: tuple, one: bool) -> Any:
    if not isinstance(value, (list, tuple, set, frozenset)):
        # one value where a list is declared (`sets=simlex999` from the command line): passed
        # through as given when it fits the element type; the component wraps it
        element = args[0] if args and origin is not tuple else Any
        fits = one and value is not None and _coerce(value, element, one) is not _MISMATCH
        return value if fits else _MISMATCH
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            return _MISMATCH
        items = [_coerce(v, a, one) for v, a in zip(value, args)]
    else:
        items = [_coerce(v, args[0], one) if args else v for v in value]
    if any(i is _MISMATCH for i in items):
        return _MISMATCH
    return type(value)(items) if isinstance(value, (tuple, set, frozenset)) else items


def _coerce_mapping(value: Any, args: tuple, one: bool) -> Any:
    if not isinstance(value, Mapping):
        return _MISMATCH
    if len(args) != 2:
        return value
    out = {}
    for k, v in value.items():
        key, item = _coerce(k, args[0], one), _coerce(v, args[1], one)
        if key is _MISMATCH or item is _MISMATCH:
            return _MISMATCH
        out[key] = item
    return out


def describe(ann: Any) -> str:
    """Readable name of an annotation: ``an integer``, ``a number or none``..."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + (" or none" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             Path: "a path", type(None): "none"}
    if ann in names:
        return names[ann]
    if origin in (list, tuple, Sequence, typing.Sequence) or ann in (list, tuple):
        plural = {str: "strings", int: "integers", float: "numbers", bool: "true/false values"}
        if args and args[0] in plural:
            return f"a list of {plural[args[0]]}"
        return f"a list of {describe(args[0])} items" if args and args[0] is not Any else "a list"
    if origin in (dict, Mapping, typing.Mapping) or ann is dict:
        return "a table of key=value options"
    return getattr(ann, "__name__", str(ann))


def show(value: Any) -> str:
    """A value as the user wrote it: strings quoted, so ``'3'`` is visibly not ``3``."""
    return repr(value) if isinstance(value, str) else str(value)
