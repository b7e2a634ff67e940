"""The component kinds, declared once: every other list of kinds (registries, error hints, CLI
choices, registration hook names) is derived from ``KIND_TABLE``.

This module imports nothing from vlkd so that both ``errors`` and ``registry`` can use it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of component: ``plural`` names its registry (``vlkd components list losses``),
    ``singular`` is used in messages and ``vlkd components show loss NAME``."""

    plural: str
    singular: str

    @property
    def hook(self) -> str:
        """The registration hook a plugin implements to register components of this kind."""
        return f"vlkd_register_{self.plural}"


KIND_TABLE: tuple[Kind, ...] = (
    Kind("backbones", "backbone"),
    Kind("heads", "head"),
    Kind("losses", "loss"),
    Kind("datasets", "dataset"),
    Kind("evaluators", "evaluator"),
    Kind("recipes", "recipe"),
    Kind("optimizers", "optimizer"),
    Kind("schedulers", "scheduler"),
    Kind("export_formats", "export-format"),
)

KINDS: tuple[str, ...] = tuple(k.plural for k in KIND_TABLE)
SINGULAR: dict[str, str] = {k.plural: k.singular for k in KIND_TABLE}
PLURAL: dict[str, str] = {k.singular: k.plural for k in KIND_TABLE}
REGISTRATION_HOOKS: dict[str, Kind] = {k.hook: k for k in KIND_TABLE}
