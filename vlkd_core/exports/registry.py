"""Export formats are components of the kind ``export_formats``: registered through the
``vlkd_register_export_formats`` hook like every other component (the core's tower-agnostic
formats by its builtin plugin ``builtin-exports``, a family's formats by that family's plugin),
so ``vlkd components list export_formats`` and ``vlkd plugins list`` show them with their plugin.

A format is an :class:`ExportFormat`: ``fits(model)`` says whether a loaded run can be written
(None, or why not in a few words), ``write(model, folder)`` writes it into an empty folder. A
format for one family's towers asks each tower what it offers that format
(:func:`export_part`, the :class:`~vlkd_core._model.abilities.ExportsAs` ability); the core never looks
at a tower's class, module or attributes to decide it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from .._model.abilities import ExportsAs
from .._host.component_info import ComponentInfo
from ..errors import ComponentCollisionError, UsageError, suggest
from .._host.registry import Component

KIND = "export_formats"


@runtime_checkable
class ExportFormat(Protocol):
    """What a registered format's ``factory()`` returns."""

    def fits(self, model: Any) -> str | None:
        """None when ``model`` (a LoadedModel) can be written in this format, else why not."""

    def write(self, model: Any, folder: Path) -> dict:
        """Write ``model`` into the empty ``folder``; the dict goes into ``vlkd_export.json``."""


@dataclass(frozen=True)
class Format:
    """A format made of two functions, for :func:`register_format` (tests, notebooks); a
    plugin registers its format through the hook instead. It is its own factory."""

    name: str
    summary: str                              # one line for listings and errors
    fits: Callable[[Any], str | None]         # LoadedModel -> None, or why it does not fit
    write: Callable[[Any, Path], dict]        # (LoadedModel, empty folder) -> extra export info

    def __call__(self) -> Format:
        return self


def _registry():
    from .._host.plugins import get_plugin_manager
    return get_plugin_manager().registry(KIND)


def register_format(fmt: Format) -> None:
    """Add a format in this process, as a plugin's registration would (it lasts until the plugin
    manager is rebuilt); another format under a taken name is an error."""
    registry = _registry()
    comp = Component(KIND, fmt.name, fmt, "local", "local", "0", ComponentInfo(description=fmt.summary))
    try:
        registry.add(comp)
    except ComponentCollisionError:
        owner = registry.get(fmt.name)
        raise UsageError(f"export format '{fmt.name}' is already registered (by plugin "
                         f"'{owner.plugin}')") from None


def formats() -> list[Component]:
    """Every registered format, in registration order (the core's first)."""
    return _registry().in_order()


def get_format(name: str) -> Component:
    registry = _registry()
    if name not in registry:
        names = [c.name for c in formats()]
        hint = suggest(name, names)
        raise UsageError(f"--format '{name}' is not one of {', '.join(names)}"
                         + (f"; did you mean {', '.join(hint)}?" if hint else ""))
    return registry.get(name)


def instance(comp: Component) -> ExportFormat:
    """The format object a registered format's factory returns."""
    fmt = comp.resolve()()
    if not isinstance(fmt, ExportFormat):
        raise UsageError(f"export format '{comp.name}' of plugin '{comp.plugin}' has no fits()/write()")
    return fmt


def fitting(model: Any) -> list[str]:
    """Names of the formats this model can be exported to (a format that cannot even be
    loaded, e.g. its library is missing, is not one of them)."""
    out = []
    for comp in formats():
        try:
            if instance(comp).fits(model) is None:
                out.append(comp.name)
        except Exception:  # noqa: BLE001 -- a hint in an error message; that format's own export says why
            continue
    return out


def export_part(tower: Any, format: str) -> Any:
    """What ``tower`` offers the export format ``format``: its
    :meth:`~vlkd_core._model.abilities.ExportsAs.exports_as` answer (the part to write, or a string
    saying why not), None for a tower without that ability or with no form in that format."""
    return tower.exports_as(format) if isinstance(tower, ExportsAs) else None
