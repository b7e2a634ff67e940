"""Parsing of ``family:model`` backbone specs and ``name[:weight]`` lists."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError


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
    if not family or not model:
        raise UsageError(f"{flag} '{spec}' must look like family:model with both parts non-empty")
    return BackboneSpec(family.strip(), model.strip())


def parse_weighted_names(text: str, flag: str = "--loss") -> list[tuple[str, float]]:
    """``infonce:1.0,simreg:0.5`` -> [('infonce', 1.0), ('simreg', 0.5)]; weight defaults to 1."""
    items: list[tuple[str, float]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        try:
            items.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise UsageError(f"{flag} '{part}': weight '{weight}' is not a number") from None
    if not items:
        raise UsageError(f"{flag} is empty")
    return items
