"""The tower flags of every command that builds towers -- ``--image SPEC``, ``--image-pretrained``,
``--image-option k=v``, ``--image-head``, ``--image-lr``, ``--lock-image`` and text alike --
generated from TrainConfig's one declaration of each part (vlkd_core/training/config.py:
TOWER_HELP, tower_option), so `vlkd train`, `vlkd eval` and `vlkd features extract` name and
explain them alike. Values are parsed as `vlkd train` parses them and become TowerConfigs.

    @tower_flags(("spec", "pretrained", "options"), after="eval")
    @handle_errors
    def eval_command(..., **towers):
        named = given_towers(towers, ("spec", "pretrained", "options"))  # {"image": TowerConfig, ...}
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, List, Mapping, Optional, Sequence

import typer

from vlkd_core.errors import UsageError
from vlkd_core.training.config import TowerConfig, TrainConfig

from .train_options import NOT_GIVEN, field_parameter, given_value

SIDES = ("image", "text")


def _field(side: str, part: str) -> dataclasses.Field:
    key = TowerConfig.key(side, part)
    return next(f for f in dataclasses.fields(TrainConfig) if f.name == key)


def tower_flag(side: str, part: str) -> str:
    """The flag of one part of one tower: ``("image", "options")`` -> ``--image-option``."""
    return _field(side, part).metadata["option"].flag(TowerConfig.key(side, part))


def tower_parameters(parts: Sequence[str], sides: Sequence[str] = SIDES,
                     notes: Mapping[Any, str] | None = None) -> list[inspect.Parameter]:
    """Typer parameters of ``parts`` of the ``sides`` towers, named by their TrainConfig keys,
    without TrainConfig's defaults (outside `vlkd train` a tower is built only when named);
    ``notes[(side, part)]`` or ``notes[part]`` is appended to a help, for what the command does
    with it."""
    notes = notes or {}
    return [field_parameter(_field(side, part), defaults=False, note=notes.get((side, part), notes.get(part, "")))
            for side in sides for part in parts]


def given_towers(values: Mapping[str, Any], parts: Sequence[str], sides: Sequence[str] = SIDES) -> dict[str, TowerConfig]:
    """The towers named on the command line (their spec given), by side. A part given for a
    side without its spec is a UsageError naming both flags."""
    towers = {}
    for side in sides:
        given = {part: given_value(_field(side, part), values.get(TowerConfig.key(side, part))) for part in parts}
        given = {part: value for part, value in given.items() if value is not NOT_GIVEN}
        if "spec" in given:
            towers[side] = TowerConfig(side, **given)
        elif given:
            raise UsageError(f"{tower_flag(side, next(iter(given)))} needs {tower_flag(side, 'spec')} SPEC")
    return towers


def _retired(flag: str, instead: str) -> inspect.Parameter:
    """A hidden flag that ends the command with one line naming the flags that replaced it."""
    def refuse(value) -> None:  # Typer hands an unannotated callback parameter the value
        if value:
            from .common import fail
            fail(f"{flag} is gone: use {instead}")
    name = "retired_" + flag.lstrip("-").replace("-", "_")
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[List[str]],
                             default=typer.Option(None, flag, hidden=True, callback=refuse))


def tower_flags(parts: Sequence[str], sides: Sequence[str] = SIDES, notes: Mapping[Any, str] | None = None,
                after: str | None = None, retired: Mapping[str, str] | None = None) -> Callable:
    """Decorator: the command's ``**towers`` becomes the tower flags in the signature Typer reads,
    after the parameter ``after`` (else last); ``retired`` maps old flags to what replaces them."""
    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        at = len(params) if after is None else [p.name for p in params].index(after) + 1
        kind = params[at - 1].kind if at else inspect.Parameter.KEYWORD_ONLY
        flags = tower_parameters(parts, sides, notes) + [_retired(f, new) for f, new in (retired or {}).items()]
        command.__signature__ = signature.replace(
            parameters=params[:at] + [p.replace(kind=kind) for p in flags] + params[at:])
        return command
    return decorate
