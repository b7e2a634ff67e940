"""Registration hooks called through pluggy, with every component attributed to its plugin.

Each kind's registration hook is one pluggy call (``pm.hook.vlkd_register_losses(register=...)``),
so pluggy's options take effect: implementations run ``tryfirst`` first, ``trylast`` last and
otherwise the last-registered plugin first, and ``hookwrapper=True`` / ``wrapper=True``
implementations wrap the whole call. Two things a plain pluggy call would lose are kept:

- *attribution*: pluggy registers each plugin through a :class:`PluginShim`, which hands out the
  plugin's own attributes except its registration hooks, each wrapped so that while it runs the
  one ``register`` callback knows whose call it is (a context variable);
- *isolation*: an exception a plugin's registration raises is recorded against that plugin
  instead of ending the call for everyone (a raising wrapper ends it: the call is made again
  without that plugin).

``register`` only records a claim; the plugin manager adds the claims to the registries once
every kind was called (see ``VlkdPluginManager._add_claims``).
"""
from __future__ import annotations

import contextvars
import functools
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from .component_info import ComponentInfo
from ..errors import PluginError
from .kinds import REGISTRATION_HOOKS, Kind

_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("vlkd_registering", default=None)


@dataclass(frozen=True)
class Claim:
    """One ``register(name, factory, **metadata)`` call: by which plugin, for which kind."""

    plugin: str
    kind: Kind
    name: str
    factory: Any
    info: ComponentInfo


class PluginShim:
    """What pluggy registers for a plugin: the plugin's attributes, its registration hooks
    wrapped (see the module docstring). ``failures`` collects plugin name -> first exception."""

    def __init__(self, plugin: Any, name: str, pm: pluggy.PluginManager, failures: dict[str, BaseException]):
        wrapped = {}
        for attr in dir(plugin):
            opts = pm.parse_hookimpl_opts(plugin, attr)
            if opts is not None and (opts.get("specname") or attr) in REGISTRATION_HOOKS:
                wrapped[attr] = _attributed(getattr(plugin, attr), name, opts, failures)
        object.__setattr__(self, "_shim", (plugin, wrapped))

    def __getattr__(self, attr: str) -> Any:
        plugin, wrapped = object.__getattribute__(self, "_shim")
        return wrapped[attr] if attr in wrapped else getattr(plugin, attr)

    def __dir__(self) -> list[str]:
        return dir(object.__getattribute__(self, "_shim")[0])

    def __repr__(self) -> str:
        return f"<vlkd plugin {object.__getattribute__(self, '_shim')[0]!r}>"


def _attributed(fn: Callable, plugin: str, opts: dict, failures: dict[str, BaseException]) -> Callable:
    """``fn`` run as ``plugin``'s; its pluggy options and argument names are kept."""
    if opts.get("hookwrapper") or opts.get("wrapper"):
        def shim(*args: Any):  # a generator, as pluggy requires of wrappers
            token = _CURRENT.set(plugin)
            try:
                gen = fn(*args)
                sent = yield _first_yield(gen, plugin)
                try:
                    gen.send(sent)
                except StopIteration as stop:
                    return stop.value
                raise PluginError(f"plugin '{plugin}': its registration wrapper yielded twice")
            except Exception as exc:
                failures.setdefault(plugin, exc)
                raise
            finally:
                _CURRENT.reset(token)
    else:
        def shim(*args: Any) -> Any:
            token = _CURRENT.set(plugin)
            try:
                return fn(*args)
            except Exception as exc:  # this plugin fails alone; the others still register
                failures.setdefault(plugin, exc)
                return None
            finally:
                _CURRENT.reset(token)
    functools.update_wrapper(shim, fn)  # __wrapped__: pluggy reads fn's argument names
    return pluggy.HookimplMarker("vlkd")(**opts)(shim)


def _first_yield(gen: Any, plugin: str) -> Any:
    try:
        return next(gen)
    except StopIteration:
        raise PluginError(f"plugin '{plugin}': its registration wrapper did not yield") from None


def registrar(kind: Kind, claims: list[Claim], failures: dict[str, BaseException]) -> Callable[..., None]:
    """The ``register`` callback of one kind's hook call: checks the call, records the claim."""
    def register(name: str, factory: Any, **metadata: Any) -> None:
        plugin = _CURRENT.get()
        if plugin is None:
            raise PluginError(f"register() for a {kind.singular} was called outside a vlkd registration hook")
        try:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin '{plugin}' registered a {kind.singular} with an invalid name {name!r}")
            info = ComponentInfo.from_keywords(metadata, where=f"plugin '{plugin}', {kind.singular} '{name}'")
        except PluginError as exc:  # broken even if the plugin catches it
            failures.setdefault(plugin, exc)
            raise
        claims.append(Claim(plugin, kind, name, factory, info))
    return register
