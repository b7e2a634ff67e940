"""Component registries: one per kind, filled through the registration hooks."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .component_info import ComponentInfo
from ..errors import ComponentCollisionError, UnknownComponentError
from .kinds import KIND_TABLE, KINDS, SINGULAR, Kind

__all__ = ["KIND_TABLE", "KINDS", "SINGULAR", "Kind", "Component", "ComponentInfo", "Registry",
           "normalize_kind"]


def normalize_kind(kind: str) -> str:
    """Accept 'loss', 'losses', 'Backbone', ... and return the plural registry name."""
    k = kind.lower().strip()
    for entry in KIND_TABLE:
        if k in (entry.plural, entry.singular):
            return entry.plural
    raise UnknownComponentError("kind", kind, KINDS)


@dataclass
class Component:
    kind: str
    name: str
    factory: Any  # callable or "module:attr"
    plugin: str
    distribution: str
    version: str
    info: ComponentInfo = field(default_factory=ComponentInfo)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Read-only view of the metadata the plugin passed (prefer the typed ``info``)."""
        return MappingProxyType(self.info.given())

    def resolve(self) -> Callable[..., Any]:
        """The factory, importing it on first use when registered as a string."""
        if isinstance(self.factory, str):
            module, _, attr = self.factory.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self.factory = obj
        return self.factory

    @property
    def description(self) -> str:
        if self.info.description:
            return self.info.description
        factory = self.factory
        doc = getattr(factory, "__doc__", None) if not isinstance(factory, str) else None
        return (doc or "").strip().splitlines()[0] if doc else ""

    def models(self) -> list[str] | None:
        """Backbone families: the names this family offers (None = open-ended, e.g. HF hub ids)."""
        models = self.info.models
        if models is None:
            return None
        if isinstance(models, str):
            module, _, attr = models.partition(":")
            models = getattr(importlib.import_module(module), attr)
        return list(models() if callable(models) else models)

    def accepts_model(self, name: str) -> bool:
        """Whether ``name`` is one of :meth:`models`, or matches a ``model_patterns`` glob (for
        open-ended names such as open_clip's ``hf-hub:org/repo`` and ``local-dir:/path``)."""
        from fnmatch import fnmatchcase
        if any(fnmatchcase(name, pattern) for pattern in self.info.model_patterns):
            return True
        models = self.models()
        return models is None or name in models


class Registry:
    """Name → Component for one kind. Collisions across distributions are errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Component] = {}
        # name -> the disabled plugin that would provide it (set by the plugin manager)
        self.missing_hint: Callable[[str], str | None] | None = None

    def add(self, component: Component) -> bool:
        """Add a component; return False if it was an identical re-registration (a no-op)."""
        existing = self._items.get(component.name)
        if existing is not None:
            if existing.factory is component.factory or existing.factory == component.factory:
                return False
            raise ComponentCollisionError(
                f"{SINGULAR[self.kind]} '{component.name}' from distribution "
                f"'{component.distribution}' (plugin '{component.plugin}') collides with the one "
                f"already registered by distribution '{existing.distribution}' "
                f"(plugin '{existing.plugin}')")
        self._items[component.name] = component
        return True

    def remove(self, name: str) -> None:
        self._items.pop(name, None)

    def get(self, name: str) -> Component:
        try:
            return self._items[name]
        except KeyError:
            plugin = self.missing_hint(name) if self.missing_hint is not None else None
            if plugin is not None:
                raise UnknownComponentError(SINGULAR[self.kind], name, (), disabled_plugin=plugin) from None
            raise UnknownComponentError(SINGULAR[self.kind], name, self._items) from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(sorted(self._items.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._items)

    def in_order(self) -> list[Component]:
        """The components in the order they were added (builtins' first)."""
        return list(self._items.values())

    def names(self) -> list[str]:
        return sorted(self._items)
