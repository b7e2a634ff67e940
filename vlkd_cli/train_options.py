"""`vlkd train`'s option flags, generated from TrainConfig's field declarations.

Each training option is declared once (vlkd_core/training/config.py: type, default, help, flags,
range); this module turns the declarations into Typer parameters, and the values Typer parsed
back into TrainConfig keys. Every flag's default is None here, meaning "not given": only given
flags override the config file and the defaults.
"""
from __future__ import annotations

import dataclasses
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
        from vlkd_core.grammar import format_options
        return " ".join(format_options(value))
    return str(value)


def _help(opt: Option, field: dataclasses.Field) -> str:
    choices = f" One of: {', '.join(opt.choices)}." if opt.choices else ""
    shown = _shown_default(field)
    if shown == "none" and "(default" in opt.help:  # the help says what None means
        return opt.help + choices
    return f"{opt.help}{choices} (default: {shown})"


def config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per TrainConfig field, as Typer reads them."""
    from vlkd_core.typecheck import hints
    annotations = hints(TrainConfig)
    params = []
    for field in dataclasses.fields(TrainConfig):
        opt: Option = field.metadata["option"]
        flags = opt.flags or (opt.flag(field.name),)
        if opt.form == "switch":
            flags = (f"{flags[0]}/--no-{flags[0][2:]}",)
        info = typer.Option(None, *flags, help=_help(opt, field), show_default=False)
        params.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                        annotation=_cli_type(annotations[field.name], opt.form)))
    return params


def _evals(specs: list[str]) -> list[str]:
    """``none`` clears the list (and what came before it)."""
    return specs[len(specs) - specs[::-1].index("none"):] if "none" in specs else specs


def given_config(values: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig keys of the flags given on the command line, their values parsed."""
    from vlkd_core.grammar import parse_loss_options, parse_options
    given: dict[str, Any] = {}
    for field in dataclasses.fields(TrainConfig):
        opt: Option = field.metadata["option"]
        value = values.get(field.name)
        if value is None or (opt.form in REPEATABLE and not value):
            continue
        flag = opt.flag(field.name)
        if opt.form == "pairs":
            value = parse_options(value, flag)
        elif opt.form == "loss-pairs":
            value = parse_loss_options(value, flag)
        elif opt.form == "list":
            value = list(value)
        elif opt.form == "evals":
            value = _evals(list(value))
        elif opt.form == "name" and str(value).lower() == "none":
            value = None
        given[field.name] = value
    return given
