"""Class names and prompt templates shipped as data (``vlkd_core/data/prompts/<name>.json``).

Each file holds ``{"classnames": [...], "templates": [...], "source": "..."}``; templates mark
the class name with ``{}``. Names are the dataset names used by the registry (``cifar10``,
``cifar100``, ``imagenet``, ``fashion-mnist``, ``mnist``, ``stl10``, ``food101``, ...).
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from ..errors import UnknownComponentError, UsageError

ALIASES = {"imagenet1k": "imagenet", "imagenet-1k": "imagenet", "cifar-10": "cifar10",
           "cifar-100": "cifar100", "fashionmnist": "fashion-mnist", "fashion_mnist": "fashion-mnist",
           "stl-10": "stl10", "food-101": "food101"}


def _dir():
    return resources.files("vlkd_core") / "data" / "prompts"


def available_prompt_sets() -> list[str]:
    """Names of the shipped class-name/template sets."""
    return sorted(p.name[:-5] for p in _dir().iterdir() if p.name.endswith(".json"))


@lru_cache(maxsize=None)
def load_prompt_set(name: str) -> dict:
    """The whole ``{"classnames", "templates", ...}`` record of a shipped set."""
    key = ALIASES.get(name.lower(), name.lower())
    path = _dir() / f"{key}.json"
    if not path.is_file():
        raise UnknownComponentError("prompt set", name, available_prompt_sets())
    return json.loads(path.read_text(encoding="utf-8"))


def load_classnames(name: str) -> list[str]:
    return list(load_prompt_set(name)["classnames"])


def load_templates(name: str) -> list[str]:
    return list(load_prompt_set(name)["templates"])


def format_prompt(template: str, classname: str) -> str:
    """Fill ``{}`` (or ``{c}`` / ``{classname}``) with the class name; plain replace, so other
    braces in a template stay untouched."""
    for mark in ("{}", "{c}", "{classname}"):
        if mark in template:
            return template.replace(mark, classname)
    raise UsageError(f"prompt template {template!r} has no '{{}}' placeholder for the class name")


def resolve_list(value, kind: str) -> list[str] | None:
    """An option that is either a shipped set's name or an explicit list."""
    if value is None:
        return None
    if isinstance(value, str):
        return load_classnames(value) if kind == "classnames" else load_templates(value)
    return [str(v) for v in value]
