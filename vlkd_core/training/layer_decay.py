"""Layer-wise learning-rate decay (``--layer-decay``, BEiT / timm's ``param_groups_layer_decay``):
a tower parameter at depth d of L trains at ``lr * decay ** (L - d)``, so the stem moves least
and the top most. Towers say how their parameters map to depth (``vlkd_core._model.depth``); heads on
a tower sit at its top (factor 1); prototype heads and loss parameters are not scaled.
"""
from __future__ import annotations

from torch import nn

from ..errors import UsageError
from .._model.abilities import LayerDepth
from .optim import DepthFn


def tower_depth(tower: nn.Module, side: str, spec: str, decay: float) -> DepthFn:
    """(name, param) -> (depth, decay ** (L - depth)); the tower's head parameters are at L."""
    top = tower.num_layers if isinstance(tower, LayerDepth) else None
    if not isinstance(top, int) or isinstance(top, bool):
        raise UsageError(f"--layer-decay: the {side} tower {spec} does not say how its parameters map "
                         "to depth (no num_layers/layer_id for this architecture); drop --layer-decay "
                         f"or lock the {side} tower")
    own = {id(p) for p in tower.parameters()}

    def depth(name: str, param: nn.Parameter) -> tuple[int, float]:
        d = int(tower.layer_id(name)) if id(param) in own else top
        if not 0 <= d <= top:
            raise UsageError(f"--layer-decay: {spec} puts '{name}' at depth {d}, outside 0..{top}")
        return d, decay ** (top - d)

    return depth


def depth_functions(model: nn.Module, specs: dict[str, str], decay: float | None) -> dict[str, DepthFn]:
    """Depth functions of the towers that train (a locked tower has no parameter to scale)."""
    if decay is None:
        return {}
    out = {}
    for side, spec in specs.items():
        tower = getattr(model, f"{side}_tower")
        if any(p.requires_grad for p in tower.parameters()):
            out[side] = tower_depth(tower, side, spec, decay)
    return out
