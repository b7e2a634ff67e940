"""The optimizer and the learning-rate schedule of a run: the engine's parameter groups (no
decay on norms, biases and temperatures; per-tower lr; layer-wise decay) handed to the
``--optimizer`` factory, and the ``--scheduler`` built over it. Both are components
(``vlkd components list optimizers|schedulers``); see optimizers.py / schedules.py for the
factory contracts."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .. import api
from ..errors import UsageError
from .._host.kinds import SINGULAR
from .config import TrainConfig


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim < 2 or "norm" in name.lower() or "logit_scale" in name or "temperature" in name \
        or name.endswith(".bias") or "embedding" in name.lower() and "position" in name.lower()


# (param name, param) -> (depth, lr factor); see vlkd_core.training.layer_decay
DepthFn = Callable[[str, nn.Parameter], tuple[int, float]]


def param_groups(named: dict[str, list[tuple[str, nn.Parameter]]], lrs: dict[str, float],
                 weight_decay: float, depths: dict[str, DepthFn] | None = None) -> list[dict]:
    """``named``: group name -> (param name, param); one decay and one no-decay group each.
    With ``depths`` (layer-wise lr decay) a group with a depth function is split further by
    depth, ``{group}/layer{d}/{decay|no_decay}`` at ``lr * factor``, deepest (full lr) first."""
    groups = []
    for group, params in named.items():
        params = [(n, p) for n, p in params if p.requires_grad]
        depth = (depths or {}).get(group)
        buckets: dict[tuple[int, float], list[tuple[str, nn.Parameter]]] = {}
        for n, p in params:
            buckets.setdefault(depth(n, p) if depth else (-1, 1.0), []).append((n, p))
        for (layer, factor), members in sorted(buckets.items(), key=lambda kv: -kv[0][0]):
            decay = [p for n, p in members if not _no_decay(n, p)]
            plain = [p for n, p in members if _no_decay(n, p)]
            prefix = group if layer < 0 else f"{group}/layer{layer:02d}"
            for ps, wd, tag in ((decay, weight_decay, "decay"), (plain, 0.0, "no_decay")):
                if ps:
                    entry = {"params": ps, "lr": lrs[group] * factor, "weight_decay": wd, "name": f"{prefix}/{tag}"}
                    if layer >= 0:
                        entry["layer"] = layer
                    groups.append(entry)
    return groups


def optimizer_summary(optimizer: torch.optim.Optimizer) -> list[dict]:
    """One row per parameter group: name, initial lr, weight decay, tensors and values."""
    return [{"name": g.get("name", str(i)), "lr": g.get("initial_lr", g["lr"]),
             "weight_decay": g.get("weight_decay", 0.0), "tensors": len(g["params"]),
             "values": sum(p.numel() for p in g["params"])} for i, g in enumerate(optimizer.param_groups)]


# where the engine's values come from, for the message refusing them as options
_SOURCES = {"lr": "--lr (--image-lr, --text-lr, --layer-decay), per parameter group",
            "weight_decay": "--weight-decay, per parameter group", "warmup_steps": "--warmup-steps",
            "total_steps": "the run's length (--epochs or --max-steps)"}


def _check(kind: str, name: str, options: dict[str, Any], flag: str) -> None:
    """What the engine fills in (``api.engine_options``) is never an option; anything else is
    checked against the factory's signature."""
    component = api.get_component(kind, name)
    fixed = api.engine_options(component)
    given = [key for key in options if key in fixed]
    if given:
        source = _SOURCES.get(given[0], "the engine")
        raise UsageError(f"{flag} {given[0]}: {SINGULAR[kind]} '{name}' gets {given[0]} from {source}, "
                         "not as an option")
    api.check_options(kind, name, options, fixed=fixed)


def check_optimization(cfg: TrainConfig) -> None:
    """Names, option names and types of ``--optimizer`` / ``--scheduler`` (values coerced in
    place where harmless), before anything is built: a one-line UsageError otherwise."""
    _check("optimizers", cfg.optimizer, cfg.optimizer_options, "--optimizer-option")
    _check("schedulers", cfg.scheduler, cfg.scheduler_options, "--scheduler-option")
    if cfg.optimizer_in_backward and not api.get_component("optimizers", cfg.optimizer).info.per_parameter:
        raise UsageError(f"--optimizer-in-backward runs one optimizer per parameter: optimizer '{cfg.optimizer}' "
                         "does not declare per_parameter=True (its step may read other parameters, e.g. a "
                         "global gradient norm); use adamw or sgd, or drop --optimizer-in-backward")


def build_optimizer(name: str, options: dict[str, Any], groups: list[dict],
                    in_backward: bool = False) -> torch.optim.Optimizer:
    """The ``name`` optimizer over ``groups``. ``in_backward``: one instance per parameter,
    stepped from backward (see optim_in_backward)."""
    component = api.get_component("optimizers", name)
    factory = component.resolve()

    def make(these: list[dict]) -> torch.optim.Optimizer:
        optimizer = factory(these, **options)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise UsageError(f"optimizer '{name}' (plugin '{component.plugin}') returned "
                             f"{type(optimizer).__name__}, not a torch.optim.Optimizer")
        return optimizer
    if in_backward:
        from .optim_in_backward import OptimizerInBackward
        return OptimizerInBackward(groups, make)
    return make(groups)


def build_scheduler(name: str, options: dict[str, Any], optimizer: torch.optim.Optimizer, warmup_steps: int,
                    total_steps: int) -> Any:
    """The ``name`` schedule over ``optimizer``, stepped once per optimizer step."""
    component = api.get_component("schedulers", name)
    declared = api.factory_options(component)
    counts = {k: v for k, v in (("warmup_steps", warmup_steps), ("total_steps", total_steps)) if k in declared}
    scheduler = component.resolve()(optimizer, **options, **counts)
    missing = [m for m in ("step", "state_dict", "load_state_dict") if not callable(getattr(scheduler, m, None))]
    if missing:
        raise UsageError(f"scheduler '{name}' (plugin '{component.plugin}') returned {type(scheduler).__name__}, "
                         f"which has no {missing[0]}(): return a torch.optim.lr_scheduler.LRScheduler")
    return scheduler
