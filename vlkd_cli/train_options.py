"""`vlkd train`'s option flags, generated from TrainConfig's field declarations.

Each training option is declared once (vlkd_core/training/config.py: type, default, help, flags,
range); this module turns the declarations into Typer parameters, and the values Typer parsed
back into TrainConfig keys. Every flag's default is None here, meaning "not given": only given
flags override the config file and the defaults. Other commands take tower flags from the same
declarations through :mod:`vlkd_cli.tower_options` (``field_parameter``, ``given_value``).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any, List, Optional

import typer

from vlkd_core.training.config import Option, TrainConfig

REPEATABLE = ("pairs", "loss-pairs", "list", "evals")


def _scalar_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``str`` -> str."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


def _cli_type(annotation: Any, form: str) -> Any:
    if form in REPEATABLE:
        return Optional[List[str]]
    if form == "switch":
        return Optional[bool]
    return Optional[_scalar_type(annotation)]


def _shown_default(field: dataclasses.Field) -> str:
    value = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    if value is None or value == [] or value == {}:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        from vlkd_core._host.grammar import format_options
        return " ".join(format_options(value))
    return str(value)


def _help(opt: Option, field: dataclasses.Field) -> str:
    choices = f" One of: {', '.join(opt.choices)}." if opt.choices else ""
    shown = _shown_default(field)
    if shown == "none" and "(default" in opt.help:  # the help says what None means
        return opt.help + choices
    return f"{opt.help}{choices} (default: {shown})"


@functools.cache
def _annotations() -> dict[str, Any]:
    from vlkd_core._host.typecheck import hints
    return hints(TrainConfig)


def field_parameter(field: dataclasses.Field, defaults: bool = True, note: str = "") -> inspect.Parameter:
    """The Typer parameter of one TrainConfig field: its flags and help from the declaration,
    ``note`` appended; ``defaults=False`` for a command where the field's default does not apply
    (a tower `vlkd eval` does not build unless named)."""
    opt: Option = field.metadata["option"]
    flags = opt.flags or (opt.flag(field.name),)
    if opt.form == "switch":
        flags = (f"{flags[0]}/--no-{flags[0][2:]}",)
    text = _help(opt, field) if defaults else opt.help + (f" One of: {', '.join(opt.choices)}." if opt.choices else "")
    info = typer.Option(None, *flags, help=f"{text} {note}".strip(), show_default=False)
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                             annotation=_cli_type(_annotations()[field.name], opt.form))


def config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per TrainConfig field, as Typer reads them."""
    return [field_parameter(field) for field in dataclasses.fields(TrainConfig)]


def _evals(specs: list[str]) -> list[str]:
    """``none`` clears the list (and what came before it)."""
    return specs[len(specs) - specs[::-1].index("none"):] if "none" in specs else specs


NOT_GIVEN = object()


def given_value(field: dataclasses.Field, value: Any) -> Any:
    """The TrainConfig value of a field's flag as Typer parsed it; NOT_GIVEN when absent."""
    from vlkd_core._host.grammar import parse_loss_options, parse_options
    opt: Option = field.metadata["option"]
    if value is None or (opt.form in REPEATABLE and not value):
        return NOT_GIVEN
    flag = opt.flag(field.name)
    if opt.form == "pairs":
        return parse_options(value, flag)
    if opt.form == "loss-pairs":
        return parse_loss_options(value, flag)
    if opt.form == "list":
        return list(value)
    if opt.form == "evals":
        return _evals(list(value))
    if opt.form == "name" and str(value).lower() == "none":
        return None
    return value


def given_config(values: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig keys of the flags given on the command line, their values parsed."""
    given = {field.name: given_value(field, values.get(field.name)) for field in dataclasses.fields(TrainConfig)}
    return {key: value for key, value in given.items() if value is not NOT_GIVEN}
