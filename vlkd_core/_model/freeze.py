"""Locking (freezing) towers and unlocking parts of them by parameter-name patterns.

ITRA's ``--unlock-keywords "kw,!kw2"`` made explicit. A *pattern list* is a comma-separated
string (or a list) of items; each item is an ``fnmatch`` glob (``layer4.*``) or, when it holds
no glob character, a plain substring (``bn``). An item with a leading ``!`` excludes.
A parameter name is selected when it matches at least one include item (or there are only
exclude items) and no exclude item::

    apply_freeze(tower, lock=True, unlock="layer4*,!*bn*")   # train layer4 except its norms
    print_freeze_summary(tower)

Locked modules must stay in eval mode while the rest trains (BatchNorm running statistics and
dropout of a frozen tower would otherwise change). ``apply_freeze`` marks every module whose
parameters are all frozen; the engine calls :func:`keep_frozen_in_eval` right after each
``model.train()`` (``model.train(); keep_frozen_in_eval(model)``).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable, Sequence

from torch import nn

from .abilities import LocksItself
from ..errors import UsageError

FROZEN_FLAG = "_vlkd_frozen"
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class NamePatterns:
    """Parsed include / exclude items of a pattern list."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]

    def matches(self, name: str) -> bool:
        if any(_item_matches(item, name) for item in self.exclude):
            return False
        if not self.include:
            return bool(self.exclude)
        return any(_item_matches(item, name) for item in self.include)


def _item_matches(item: str, name: str) -> bool:
    if _GLOB_CHARS & set(item):
        return fnmatch.fnmatchcase(name, item)
    return item in name


def parse_patterns(patterns: str | Sequence[str] | None) -> NamePatterns:
    """``"layer4*,!*bn*"`` -> NamePatterns(include=("layer4*",), exclude=("*bn*",))."""
    if patterns is None:
        return NamePatterns((), ())
    items = patterns.split(",") if isinstance(patterns, str) else list(patterns)
    include, exclude = [], []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if item.startswith("!"):
            if not item[1:].strip():
                raise UsageError(f"freeze pattern '{raw}': '!' must be followed by a pattern")
            exclude.append(item[1:].strip())
        else:
            include.append(item)
    return NamePatterns(tuple(include), tuple(exclude))


def select_parameters(module: nn.Module, patterns: str | Sequence[str] | None) -> list[str]:
    """Names of the parameters of ``module`` selected by ``patterns``."""
    parsed = parse_patterns(patterns)
    return [name for name, _ in module.named_parameters() if parsed.matches(name)]


def set_requires_grad(module: nn.Module, patterns: str | Sequence[str] | None, value: bool,
                      flag: str = "unlock") -> list[str]:
    """Set ``requires_grad`` on the parameters selected by ``patterns``; returns their names.
    A non-empty pattern list selecting nothing is a usage error (a typo would silently train
    nothing)."""
    parsed = parse_patterns(patterns)
    if not parsed.include and not parsed.exclude:
        return []
    chosen = []
    for name, param in module.named_parameters():
        if parsed.matches(name):
            param.requires_grad_(value)
            chosen.append(name)
    if not chosen:
        raise UsageError(f"{flag} pattern '{patterns}' matches no parameter name "
                         f"(example names: {', '.join(n for n, _ in list(module.named_parameters())[:3])})")
    return chosen


def apply_freeze(module: nn.Module, lock: bool = False, unlock: str | Sequence[str] | None = None,
                 freeze: str | Sequence[str] | None = None) -> nn.Module:
    """Lock the whole module (``lock=True``), then re-enable gradients for the parameters
    matching ``unlock`` and disable them for the ones matching ``freeze``. Marks fully-frozen
    sub-modules so :func:`keep_frozen_in_eval` can keep them in eval mode. Returns ``module``."""
    if lock:
        module.requires_grad_(False)
    set_requires_grad(module, unlock, True, flag="unlock")
    set_requires_grad(module, freeze, False, flag="freeze")
    mark_frozen(module)
    if is_frozen(module):
        module.eval()
    return module


def lock(tower: nn.Module, unlock: str | Sequence[str] | None = None) -> nn.Module:
    """Lock a tower, the one way the engine does it (``--lock-image``, ``--teacher``...): the
    tower's own ``lock_tower()`` when its family defines one (OpenCLIP's LiT lock with
    ``unlocked_groups``; learnable prompts that stay trainable), else every parameter; then
    ``unlock`` patterns re-enable gradients and frozen sub-modules are marked for eval mode."""
    if isinstance(tower, LocksItself):
        tower.lock_tower()
    else:
        tower.requires_grad_(False)
    return apply_freeze(tower, unlock=unlock)


def is_frozen(module: nn.Module) -> bool:
    """True when the module has parameters and none of them requires a gradient."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def mark_frozen(module: nn.Module) -> None:
    """Flag every sub-module (including ``module``) whose parameters are all frozen."""
    for sub in module.modules():
        setattr(sub, FROZEN_FLAG, is_frozen(sub))


def keep_frozen_in_eval(module: nn.Module) -> nn.Module:
    """Put every module flagged frozen by :func:`apply_freeze` back into eval mode.
    Call after ``model.train()``: a locked BatchNorm then keeps its running statistics and a
    locked tower's dropout stays off."""
    for sub in _outermost_frozen(module):
        sub.eval()
    return module


def _outermost_frozen(module: nn.Module) -> Iterable[nn.Module]:
    if getattr(module, FROZEN_FLAG, False):
        yield module
        return
    for child in module.children():
        yield from _outermost_frozen(child)


@dataclass(frozen=True)
class FreezeSummary:
    """Parameter counts (elements) of a module."""

    trainable: int
    frozen: int
    trainable_tensors: int
    frozen_tensors: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen


def freeze_summary(module: nn.Module) -> FreezeSummary:
    """Trainable vs frozen parameter counts; shared parameters are counted once."""
    seen: set[int] = set()
    counts = [0, 0, 0, 0]
    for param in module.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        trainable = param.requires_grad
        counts[0 if trainable else 1] += param.numel()
        counts[2 if trainable else 3] += 1
    return FreezeSummary(*counts)


def summary_table(modules: dict[str, nn.Module]):
    """A rich table with one row per named module: trainable, frozen, total, % trainable."""
    from rich.table import Table
    table = Table(title="parameters")
    for col in ("module", "trainable", "frozen", "total", "% trainable"):
        table.add_column(col, justify="left" if col == "module" else "right")
    for name, module in modules.items():
        s = freeze_summary(module)
        share = 100.0 * s.trainable / s.total if s.total else 0.0
        table.add_row(name, f"{s.trainable:,}", f"{s.frozen:,}", f"{s.total:,}", f"{share:.1f}")
    return table


def print_freeze_summary(module: nn.Module | dict[str, nn.Module], console=None) -> FreezeSummary:
    """Print the rich table for one module (or several, by name) and return the total summary."""
    from rich.console import Console
    modules = module if isinstance(module, dict) else {type(module).__name__: module}
    (console or Console()).print(summary_table(modules))
    parts = [freeze_summary(m) for m in modules.values()]
    return FreezeSummary(*(sum(getattr(p, f) for p in parts)
                           for f in ("trainable", "frozen", "trainable_tensors", "frozen_tensors")))
