"""The small text grammars of the command line and config files, parsed (and written) here only.

    family:model            openclip:RN50, hf:org/model, openclip:hf-hub:org/repo
    name[:weight],...       infonce,simreg:0.5                       (--loss)
    key=value               image_size=64, seeds=[0,1]               (--image-option, ...)
    LOSS.option=value       seed.queue_size=4096, my_loss.t=0.1      (--loss-option)
    NAME[:key=value,...]    knn:k=[1,5],dataset.size=16,prefix=x     (--eval)
    SIDE:patterns           image:layer4*,!*bn*                      (--unlock)

Values are JSON when they parse as JSON (numbers, booleans, lists, quoted strings), else the
text itself. Names are kept exactly as written (``my_loss`` stays ``my_loss``); option keys
accept ``-`` for ``_`` (``image-size`` = ``image_size``), as flags do. Each ``parse_*`` has a
``format_*`` inverse, so a parsed value written back parses to the same value.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

SIDES = ("image", "text")


def value_of(text: str) -> Any:
    """JSON when the text parses as JSON, else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def text_of(value: Any) -> str:
    """The inverse of :func:`value_of`: strings that would parse as something else are quoted."""
    if isinstance(value, str) and value_of(value) == value and "," not in value:
        return value
    return json.dumps(value, separators=(",", ":"))


def option_key(key: str) -> str:
    return key.strip().replace("-", "_")


# -- family:model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackboneSpec:
    family: str
    model: str

    def __str__(self) -> str:
        return f"{self.family}:{self.model}"


def parse_backbone_spec(spec: str, flag: str = "backbone") -> BackboneSpec:
    """``openclip:RN50`` -> BackboneSpec('openclip', 'RN50'). Only the first colon splits, so
    ``hf:org/model`` and ``openclip:hf-hub:org/model`` keep their colons."""
    if not isinstance(spec, str) or ":" not in spec:
        raise UsageError(f"{flag} '{spec}' must look like family:model "
                         f"(e.g. openclip:RN50, torchvision:resnet18, hf:bert-base-uncased)")
    family, model = spec.split(":", 1)
    if not family.strip() or not model.strip():
        raise UsageError(f"{flag} '{spec}' must look like family:model with both parts non-empty")
    return BackboneSpec(family.strip(), model.strip())


# -- name[:weight],... -------------------------------------------------------------------------
def parse_weighted_names(text: str, flag: str = "--loss") -> list[tuple[str, float]]:
    """``infonce:1.0,simreg:0.5`` -> [('infonce', 1.0), ('simreg', 0.5)]; weight defaults to 1 and
    must be finite and > 0 (the same rule for ``--loss`` and ``--data``)."""
    items: list[tuple[str, float]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        if not name.strip():
            raise UsageError(f"{flag} '{part}': a name is missing before ':'")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise UsageError(f"{flag} '{part}': weight '{weight}' is not a number") from None
        if not (math.isfinite(value) and value > 0):  # a weight <= 0 would flip or drop a term
            raise UsageError(f"{flag} '{part}': weight {weight.strip()} must be a finite number > 0")
        items.append((name.strip(), value))
    if not items:
        raise UsageError(f"{flag} is empty")
    names = [n for n, _ in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"{flag} names '{repeated[0]}' twice; give it one weight")
    return items


def format_weighted_names(items: list[tuple[str, float]]) -> str:
    return ",".join(name if weight == 1.0 else f"{name}:{weight:g}" for name, weight in items)


# -- key=value ---------------------------------------------------------------------------------
def parse_options(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> {k: value}; later pairs override earlier ones."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} '{pair}' must look like key=value")
        options[option_key(key)] = value_of(value)
    return options


def format_options(options: dict[str, Any]) -> list[str]:
    return [f"{key}={text_of(value)}" for key, value in options.items()]


# -- LOSS.option=value -------------------------------------------------------------------------
def parse_loss_options(pairs: list[str] | None, flag: str = "--loss-option") -> dict[str, dict[str, Any]]:
    """``["seed.queue_size=4096"]`` -> {"seed": {"queue_size": 4096}}; the loss name (up to the
    first dot) is kept as written, since it must match a ``--loss`` name; the option key maps
    ``-`` to ``_`` like every option key."""
    nested: dict[str, dict[str, Any]] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        name, dot, option = key.strip().partition(".")
        if not sep or not dot or not name or not option.strip():
            raise UsageError(f"{flag} '{pair}' must look like LOSS.option=value (e.g. seed.queue_size=4096)")
        nested.setdefault(name, {})[option_key(option)] = value_of(value)
    return nested


def format_loss_options(nested: dict[str, dict[str, Any]]) -> list[str]:
    return [f"{name}.{pair}" for name, options in nested.items() for pair in format_options(options)]


# -- NAME[:key=value,...] ----------------------------------------------------------------------
def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_eval_spec(spec: str, flag: str = "--eval") -> tuple[str, dict[str, Any]]:
    """``knn:k=[1,5],dataset.size=16`` -> ('knn', {'k': [1, 5], 'dataset_options': {'size': 16}}).
    Dotted keys nest into ``<outer>_options``; ``prefix=X`` renames the metrics (``X/top1``)."""
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise UsageError(f"{flag} '{spec}': an evaluator name is missing")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in _split_top_level(rest))):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"{flag} '{spec}': '{part}' must look like key=value")
        if "." in key:
            outer, inner = key.split(".", 1)
            options.setdefault(f"{option_key(outer)}_options", {})[option_key(inner)] = value_of(value)
        else:
            options[option_key(key)] = value_of(value)
    return name.strip(), options


def format_eval_spec(name: str, options: dict[str, Any]) -> str:
    parts = []
    for key, value in options.items():
        if key.endswith("_options") and isinstance(value, dict):
            parts += [f"{key[:-len('_options')]}.{k}={text_of(v)}" for k, v in value.items()]
        else:
            parts.append(f"{key}={text_of(value)}")
    return name + (":" + ",".join(parts) if parts else "")


# -- SIDE:patterns -----------------------------------------------------------------------------
def parse_unlock(items: list[str], flag: str = "--unlock") -> dict[str, str]:
    """``["image:layer4*,!*bn*", "text:encoder.layer.5*"]`` -> {side: "patterns"}; several items
    for one side are joined."""
    out: dict[str, list[str]] = {}
    for item in items:
        side, sep, patterns = item.partition(":")
        if not sep or side not in SIDES or not patterns.strip():
            raise UsageError(f"{flag} '{item}' must start with 'image:' or 'text:' "
                             "(e.g. --unlock 'image:layer4*,!*bn*')")
        out.setdefault(side, []).append(patterns.strip())
    return {side: ",".join(p) for side, p in out.items()}


def format_unlock(unlock: dict[str, str]) -> list[str]:
    return [f"{side}:{patterns}" for side, patterns in unlock.items()]
