"""What reaches each tower: the resolved input size, context length and transforms, said at start
(one line per tower) and written to ``RUN/inputs.json``; the tensor shapes of the first training
batch, measured where the towers receive them, are added after the first step (and to
``summary.json``), so a comparison can check it ran the same job on both sides."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._model.abilities import TextContext, TrimsPadding
from .._model.images import describe_image_transforms

INPUTS_FILE = "inputs.json"


def describe_towers(bundle, augment: str, train_transforms: bool) -> dict[str, dict[str, Any]]:
    """Per side: the tower spec, its role, and what its inputs are (size and transforms for an
    image tower, context length for a text tower)."""
    out: dict[str, dict[str, Any]] = {}
    for side in ("image", "text"):
        tower = bundle.tower(side)
        role = "teacher" if bundle.teacher == side else ("locked" if bundle.frozen[side] else "trains")
        info: dict[str, Any] = {"tower": getattr(tower, "spec", type(tower).__name__), "role": role}
        if side == "image":
            info.update(describe_image_transforms(tower, augment if train_transforms else "none"))
        else:
            info["context_length"] = tower.context_length if isinstance(tower, TextContext) else None
            info["tokens"] = ("trimmed to each batch's longest caption" if isinstance(tower, TrimsPadding) and tower.trims_padding
                              else "padded to each batch's longest caption or the context length")
        out[side] = info
    return out


def start_lines(towers: dict[str, dict[str, Any]]) -> list[str]:
    """One line per tower for the start of a run."""
    image, text = towers["image"], towers["text"]
    size = (f"{image['size']} px, {image['filter']}, mean={image['mean']} std={image['std']}" if image.get("size")
            else "its own preprocess")
    lines = [f"image tower {image['tower']} ({image['role']}): {size}; train: {image['train']}; "
             f"eval: {image['eval']}"]
    context = f"context {text['context_length']} tokens" if text.get("context_length") else "its own tokenizer"
    lines.append(f"text tower {text['tower']} ({text['role']}): {context}, {text['tokens']}")
    return lines


def _shapes(value: Any) -> Any:
    """Tensor -> its shape; a dict or sequence of tensors -> theirs."""
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, dict):
        return {k: _shapes(v) for k, v in value.items() if isinstance(v, torch.Tensor)}
    if isinstance(value, (list, tuple)):
        return [_shapes(v) for v in value]
    return type(value).__name__


class FirstInputs:
    """Records the shapes of the first inputs each tower's ``forward`` receives (a forward
    pre-hook, removed once it fired): what really reached the model, after the loader, the
    tokenizer and any padding trim. A tower answered from a cache or store is never called."""

    def __init__(self, towers: dict[str, nn.Module]):
        self.seen: dict[str, Any] = {}
        self._handles = {side: tower.register_forward_pre_hook(self._hook(side), with_kwargs=True)
                         for side, tower in towers.items()}

    def _hook(self, side: str):
        def record(module, args, kwargs):
            self.seen[side] = _shapes(args[0] if args else next(iter(kwargs.values()), None))
            self._handles.pop(side).remove()
        return record

    def close(self) -> None:
        for handle in self._handles.values():
            handle.remove()
        self._handles.clear()

    def shapes(self) -> dict[str, Any]:
        return {side: self.seen.get(side, "not called (features from a cache or store)")
                for side in ("image", "text")}


def write_inputs(run_dir: Path, towers: dict[str, dict[str, Any]], batch: dict[str, Any] | None = None) -> None:
    data = {"towers": towers, **({"first_batch": batch} if batch is not None else {})}
    (Path(run_dir) / INPUTS_FILE).write_text(json.dumps(data, indent=2, default=str))
