"""Recipes: option values tuned for one job, kept apart from the options' own defaults.

The defaults of :class:`~vlkd_core.training.config.TrainConfig` are meant for any job (a tower
trains at its own input size, the learning rate is OpenCLIP's). What was tuned for one job --
the 48 px and the short schedule of the built-in shapes job -- is a recipe:

    Recipe(job={"image": "torchvision:resnet18", ..., "data": "shapes"},
           values={"image_options": {"image_size": 48}, "lr": 2e-3, "epochs": 3, ...})

``--recipe NAME`` (default ``default``) fills in the options the user did not set, and only
while the run *is* the recipe's job: naming another tower or other data drops the recipe
(``vlkd train --image openclip:RN50`` trains at RN50's own 224 px). Naming the recipe
explicitly applies it whatever the job. Dict options merge key by key, the user's keys winning.
A resumed run keeps its saved config and is never re-recipied.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class Recipe:
    """Values tuned for one job.

    job:    the options that make the job (towers, their weights, the data); the recipe applies
            while each has this value.
    values: what was tuned for that job, by TrainConfig key.

    The factory's docstring says why (``vlkd components show recipe NAME`` prints it).
    """

    job: Mapping[str, Any]
    values: Mapping[str, Any]
    name: str = field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "job", MappingProxyType(dict(self.job)))
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))


@dataclass(frozen=True)
class RecipeUse:
    """What a recipe did to a new run: the values it set, or why it set none."""

    name: str
    applied: dict[str, Any]
    skipped_because: str = ""

    def line(self) -> str:
        """One line for the start of a run."""
        if not self.name:
            return ""
        if self.skipped_because:
            return f"recipe {self.name}: not used ({self.skipped_because}); options at their defaults"
        from .._host.grammar import format_options
        shown = " ".join(format_options(_flat(self.applied))) or "nothing left to set"
        return f"recipe {self.name}: {shown}"


def _flat(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"image_options": {"image_size": 48}}`` -> ``{"image_options.image_size": 48}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name`` (``vlkd components list recipes``)."""
    from .. import api
    component = api.get_component("recipes", name)
    recipe = component.resolve()()
    if not isinstance(recipe, Recipe):
        raise UsageError(f"recipe '{name}' (plugin '{component.plugin}') is not a vlkd Recipe "
                         f"but {type(recipe).__name__}")
    return Recipe(recipe.job, recipe.values, name=name)


def _job_differs(recipe: Recipe, settings: Mapping[str, Any]) -> str:
    """The first job option whose value is not the recipe's, as "--image is openclip:RN50"."""
    from .config import option_name
    for key, wanted in recipe.job.items():
        if settings.get(key) != wanted:
            return f"{option_name(key, 'flags')} is {settings.get(key)}, not {wanted}"
    return ""


def apply_recipe(settings: dict[str, Any], given: set[str], explicit: bool) -> RecipeUse:
    """Fill ``settings`` (every TrainConfig key, in place) from its ``recipe`` where the user
    did not set the option (``given``: keys set by flags or a config file). ``explicit``: the
    user named the recipe, so it applies even to another job."""
    name = settings.get("recipe")
    if not name or str(name).lower() == "none":
        settings["recipe"] = None
        return RecipeUse("", {})
    recipe = get_recipe(name)
    differs = _job_differs(recipe, settings)
    if differs and not explicit:
        settings["recipe"] = None  # the saved config says no recipe shaped this run
        return RecipeUse(name, {}, differs)
    applied: dict[str, Any] = {}
    for key, value in recipe.values.items():
        if key not in settings:
            raise UsageError(f"recipe '{name}' sets '{key}', which is not a training option")
        if isinstance(value, Mapping):  # key by key: the user's keys win over the recipe's
            mine = settings[key] if key in given else {}
            ours = {k: v for k, v in value.items() if k not in mine}
            settings[key] = {**settings[key], **ours, **mine}
            if ours:
                applied[key] = ours
        elif key not in given:
            settings[key] = value
            applied[key] = value
    return RecipeUse(name, applied)
