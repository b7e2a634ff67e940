"""The plugin manager: builtins and entry-point plugins, each registered through the same hooks.

Each kind's registration hook is called through pluggy, so ``tryfirst`` / ``trylast`` and
wrappers take effect, while every component is attributed to its plugin and distribution and a
plugin that raises, collides or passes unknown metadata is recorded as broken and rolled back
(all or nothing) while every other plugin keeps working (see :mod:`.registration`). A builtin's
name is never taken over: builtins' claims are added first, then the others in pluggy's call
order, so of two third-party plugins claiming one name the one called first (``tryfirst``) keeps
it. Which hooks a plugin implements is read through pluggy's public API (``get_hookcallers`` /
``get_hookimpls``, ``parse_hookimpl_opts`` for disabled plugins).
"""
from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Iterable

import pluggy

from .. import hookspecs
from .component_info import ComponentInfo
from ..errors import ComponentCollisionError, PluginError, VlkdError, suggest
from .kinds import KIND_TABLE, KINDS, REGISTRATION_HOOKS, Kind
from .registration import Claim, PluginShim, registrar
from .registry import Component, Registry

ENTRY_POINT_GROUP = "vlkd"
DISABLE_ENV = "VLKD_DISABLE_PLUGINS"

# Builtin plugins live in vlkd_core and register exactly like third-party ones.
BUILTIN_PLUGINS = {
    "builtin-backbones": "vlkd_core.builtins.backbones",
    "builtin-heads": "vlkd_core.builtins.heads",
    "builtin-datasets": "vlkd_core.builtins.datasets",
    "builtin-evaluators": "vlkd_core.builtins.evaluators",
    "builtin-recipes": "vlkd_core.builtins.recipes",
    "builtin-optimizers": "vlkd_core.builtins.optimizers",
    "builtin-schedulers": "vlkd_core.builtins.schedulers",
    "builtin-exports": "vlkd_core.builtins.exports",
    "builtin-metrics": "vlkd_core.builtins.metrics_file",
    "builtin-tensorboard": "vlkd_core.builtins.tensorboard",
}


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    status: str = "ok"  # ok | broken | disabled
    error: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_PLUGINS


def _last_line(exc: BaseException) -> str:
    if isinstance(exc, VlkdError):  # already a one-line message naming the plugin
        return str(exc)
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else repr(exc)


def _vlkd_version() -> str:
    try:
        return metadata.version("vlkd")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class PluginWarning(UserWarning):
    """A plugin setting that does nothing (e.g. disabling a plugin that does not exist)."""


def disabled_from_env() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


class VlkdPluginManager:
    """Owns the pluggy manager, the plugin table and one registry per component kind."""

    def __init__(self, disable: Iterable[str] = (), entry_points: bool = True):
        self.pm = pluggy.PluginManager("vlkd")
        self.pm.add_hookspecs(hookspecs)
        self.disabled = set(disable) | disabled_from_env()
        self.plugins: dict[str, PluginInfo] = {}
        self.registries: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}
        self._disabled_loaders: dict[str, Any] = {}
        self._disabled_provides: dict[str, dict[str, set[str]]] = {}
        self._failures: dict[str, BaseException] = {}  # plugin -> what its registration raised
        for kind, registry in self.registries.items():
            registry.missing_hint = lambda name, kind=kind: self.disabled_provider(kind, name)
        self._load_builtins()
        if entry_points:
            self._load_entry_points()
            self._warn_unknown_disabled()
        self._register_components()

    def _warn_unknown_disabled(self) -> None:
        """A misspelt name in VLKD_DISABLE_PLUGINS / --disable-plugin would disable nothing."""
        import warnings

        from ..errors import suggest
        for name in sorted(self.disabled - set(self.plugins)):
            hint = suggest(name, self.plugins)
            warnings.warn(f"{DISABLE_ENV} / --disable-plugin: no plugin named '{name}'"
                          + (f"; did you mean {', '.join(hint)}?" if hint else
                             " (see `vlkd plugins list`)"), PluginWarning, stacklevel=3)

    def disabled_provider(self, kind: str, name: str) -> str | None:
        """The disabled plugin that would register ``name`` of ``kind``, if any (for error
        messages only: the plugin is imported, asked what it registers, and left unregistered)."""
        for plugin, load in self._disabled_loaders.items():
            if plugin not in self._disabled_provides:
                self._disabled_provides[plugin] = self._provides(load)
            if name in self._disabled_provides[plugin].get(kind, set()):
                return plugin
        return None

    def _provides(self, load: Any) -> dict[str, set[str]]:
        """Kind -> names a plugin that is not registered in pluggy would register."""
        provides: dict[str, set[str]] = {}
        try:
            module = load()
            for kind in KIND_TABLE:  # parse_hookimpl_opts: is it a @hookimpl (pluggy's check)
                if hasattr(module, kind.hook) and self.pm.parse_hookimpl_opts(module, kind.hook):
                    getattr(module, kind.hook)(register=lambda n, f, _k=kind.plural, **meta:
                                               provides.setdefault(_k, set()).add(n))
        except Exception:  # noqa: BLE001 -- a hint only; a broken plugin just gives none
            pass
        return provides

    # -- loading -------------------------------------------------------------------------------
    def _add(self, info: PluginInfo, load) -> None:
        self.plugins[info.name] = info
        if info.name in self.disabled:
            info.status = "disabled"
            self._disabled_loaders[info.name] = load
            return
        try:
            module = load()
            self.pm.register(PluginShim(module, info.name, self.pm, self._failures), name=info.name)
        except Exception as exc:  # a plugin must never take the whole tool down
            info.status, info.error = "broken", _last_line(exc)

    def _load_builtins(self) -> None:
        version = _vlkd_version()
        for name, module in BUILTIN_PLUGINS.items():
            info = PluginInfo(name, "vlkd", version, module)
            self._add(info, lambda module=module: importlib.import_module(module))

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self.plugins:  # the same distribution seen twice on sys.path
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.name if dist else "?", dist.version if dist else "?",
                              ep.value)
            self._add(info, ep.load)

    def register_module(self, module: ModuleType | Any, name: str, distribution: str = "local",
                        version: str = "0") -> PluginInfo:
        """Register an in-process plugin object (tests, notebooks) and its components."""
        info = PluginInfo(name, distribution, version, getattr(module, "__name__", repr(module)))
        self._add(info, lambda: module)
        if info.status == "ok":
            self._register_components([name])
        return info

    # -- registration --------------------------------------------------------------------------
    def _register_components(self, names: list[str] | None = None) -> None:
        """Call every kind's registration hook through pluggy (only ``names``' implementations
        when given) and add what the plugins claimed."""
        names = [n for n in (self.plugins if names is None else names) if self.plugins[n].status == "ok"]
        for name in names:
            try:
                _check_hook_names(name, self._hookimpls(self.pm.get_plugin(name)), self.pm)
            except PluginError as exc:
                self._break(name, exc)
        claims: list[Claim] = []
        for kind in KIND_TABLE:
            claims += self._call_kind(kind, names)
        self._add_claims(claims)
        for name in names:
            hooks = sorted(hook.removeprefix("vlkd_") for hook in self._hookimpls(self.pm.get_plugin(name))
                           if hook not in REGISTRATION_HOOKS) if self.plugins[name].status == "ok" else []
            if hooks:
                self.plugins[name].registered["hooks"] = hooks

    def _hookimpls(self, plugin: Any) -> dict[str, pluggy.HookImpl]:
        """Hook name -> this plugin's implementation."""
        return {caller.name: impl for caller in self.pm.get_hookcallers(plugin) or ()
                for impl in caller.get_hookimpls() if impl.plugin is plugin}

    def _call_kind(self, kind: Kind, names: list[str]) -> list[Claim]:
        """One pluggy call of ``kind``'s hook over the live plugins among ``names``; made again
        without a plugin whose wrapper raised (that ends a pluggy call for everyone)."""
        while True:
            live = {n for n in names if self.plugins[n].status == "ok"}
            others = [p for n, p in self.pm.list_name_plugin() if p is not None and n not in live]
            caller = self.pm.subset_hook_caller(kind.hook, others) if others else getattr(self.pm.hook, kind.hook)
            claims: list[Claim] = []
            try:
                caller(register=registrar(kind, claims, self._failures))
            except Exception:
                if not self._break_failed():
                    raise  # not a plugin's doing
                continue
            self._break_failed()
            return [c for c in claims if self.plugins[c.plugin].status == "ok"]

    def _break_failed(self) -> bool:
        """Mark the plugins whose registration raised broken; True if there were new ones."""
        new = [n for n, exc in self._failures.items() if self.plugins[n].status == "ok"]
        for name in new:
            self._break(name, self._failures[name])
        return bool(new)

    def _break(self, name: str, exc: BaseException) -> None:
        info = self.plugins[name]
        for kind, comps in info.registered.items():  # all or nothing per plugin
            for comp in comps if kind in self.registries else ():
                self.registries[kind].remove(comp)
        info.registered = {}
        info.status, info.error = "broken", _last_line(exc)
        self.pm.unregister(name=name)

    def _add_claims(self, claims: list[Claim]) -> None:
        """Builtins' claims first (a builtin's name is never taken over), then the others in
        pluggy's call order; a name another distribution holds breaks the later claimant."""
        for claim in sorted(claims, key=lambda c: not self.plugins[c.plugin].builtin):
            info = self.plugins[claim.plugin]
            if info.status != "ok":
                continue
            comp = Component(claim.kind.plural, claim.name, claim.factory, info.name, info.distribution,
                             info.version, claim.info)
            try:
                if self.registries[comp.kind].add(comp):
                    info.registered.setdefault(comp.kind, []).append(comp.name)
            except ComponentCollisionError as exc:
                self._break(info.name, exc)

    # -- queries ------------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry:
        return self.registries[kind]

    @property
    def hook(self):
        return self.pm.hook


def _check_hook_names(plugin: str, impls: dict[str, pluggy.HookImpl], pm: pluggy.PluginManager) -> None:
    """A misspelt hook (``vlkd_on_step_ends``) would never be called: an error, unless the
    plugin marked it ``optionalhook=True`` (a hook of a newer vlkd)."""
    specified = [name for name in vars(hookspecs) if pm.parse_hookspec_opts(hookspecs, name)]
    for name, impl in impls.items():
        if not getattr(pm.hook, name).has_spec() and not impl.optionalhook:
            hint = suggest(name, specified)
            raise PluginError(f"plugin '{plugin}' implements unknown hook '{name}'"
                              + (f"; did you mean {', '.join(hint)}?" if hint else ""))


_manager: VlkdPluginManager | None = None


def get_plugin_manager() -> VlkdPluginManager:
    """The process-wide manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = VlkdPluginManager()
    return _manager


def reset_plugin_manager(disable: Iterable[str] = (), entry_points: bool = True) -> VlkdPluginManager:
    """Rebuild the manager (after installing a plugin, or to disable some)."""
    global _manager
    _manager = VlkdPluginManager(disable=disable, entry_points=entry_points)
    return _manager
