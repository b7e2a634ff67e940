"""Weight inheritance (TinyCLIP's manual form): the student is the teacher's own architecture
with fewer blocks, starting from the weights of the blocks it keeps.

``--student-init-from-teacher`` with ``--teacher-model``: each student tower is a copy of the
teacher's tower (and head); ``--inherit-layers image:0,2,4,6 text:0,3,6,9`` keeps those blocks
(in the tower's depth order, the blocks ``--layer-decay`` counts), the others are removed. A tower
names its blocks through ``blocks()`` (towers with a depth map have it, see
:mod:`vlkd_core._model.depth`); removing blocks must leave a tower that still runs, which is checked
with one forward pass: a block that changes the width or resolution cannot go (e.g. the first
block of an EfficientNet stage), and the error names it.

Narrower widths (TinyCLIP's automatic inheritance with learned masks) are not done.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from .._model.abilities import NamesBlocks
from ..errors import UsageError


def parse_inherit_layers(items: list[str]) -> dict[str, list[int]]:
    """``["image:0,2,4", "text:0,3"]`` -> ``{"image": [0, 2, 4], "text": [0, 3]}``."""
    kept: dict[str, list[int]] = {}
    for item in (part for value in items for part in str(value).split()):  # "image:0,2 text:0,3" too
        side, _, layers = str(item).partition(":")
        if side not in ("image", "text") or not layers:
            raise UsageError(f"--inherit-layers '{item}': write SIDE:i,j,... with SIDE image or text")
        try:
            kept[side] = sorted({int(x) for x in layers.split(",")})
        except ValueError:
            raise UsageError(f"--inherit-layers '{item}': block numbers must be integers") from None
    return kept


def tower_blocks(tower: nn.Module, side: str) -> list[str]:
    names = list(tower.blocks()) if isinstance(tower, NamesBlocks) else []
    if not names:
        raise UsageError(f"--inherit-layers: the teacher's {side} tower ({getattr(tower, 'spec', type(tower).__name__)}) "
                         "names no blocks (it has no depth map), so none can be chosen")
    return names


def _drop(root: nn.Module, names: list[str]) -> None:
    """Remove the modules ``names`` from their parent containers (Sequential / ModuleList)."""
    parents: dict[str, list[str]] = {}
    for name in names:
        parent, _, child = name.rpartition(".")
        parents.setdefault(parent, []).append(child)
    for parent_name, children in parents.items():
        parent = root.get_submodule(parent_name) if parent_name else root
        if not isinstance(parent, (nn.Sequential, nn.ModuleList)):
            raise UsageError(f"--inherit-layers: block '{parent_name}.{children[0]}' is not in a list of "
                             "blocks, so it cannot be removed")
        kept = [m for key, m in parent.named_children() if key not in children]
        replacement = type(parent)(*kept) if isinstance(parent, nn.Sequential) else nn.ModuleList(kept)
        owner_name, _, attr = parent_name.rpartition(".")
        setattr(root.get_submodule(owner_name) if owner_name else root, attr, replacement)


@torch.no_grad()
def _still_runs(tower: nn.Module, side: str, kept: list[int]) -> None:
    was = tower.training
    tower.eval()
    try:
        if side == "image":
            size = getattr(getattr(tower, "image_spec", None), "size", 224)
            tower(torch.zeros(1, 3, size, size))
        else:
            tower(tower.preprocess(["a photo"], train=False))
    except RuntimeError as exc:
        raise UsageError(f"--inherit-layers {side}:{','.join(map(str, kept))}: the teacher's {side} tower does not "
                         f"run without the other blocks ({str(exc).splitlines()[0]}); keep the blocks that change "
                         "its width or resolution") from None
    finally:
        tower.train(was)


def inherit_tower(teacher_tower: nn.Module, side: str, kept: list[int] | None) -> nn.Module:
    """A trainable copy of ``teacher_tower`` keeping the blocks ``kept`` (all when None)."""
    student = copy.deepcopy(teacher_tower)
    student.requires_grad_(True)
    if kept is not None:
        blocks = tower_blocks(student, side)
        bad = [i for i in kept if not 0 <= i < len(blocks)]
        if bad:
            raise UsageError(f"--inherit-layers: the teacher's {side} tower has blocks 0-{len(blocks) - 1}, not {bad[0]}")
        _drop(student, [name for i, name in enumerate(blocks) if i not in kept])
        student.__dict__.pop("_vlkd_block_depth", None)  # the depth map is rebuilt for the new blocks
        student.__dict__.pop("_vlkd_layer_map", None)
        _still_runs(student, side, kept)
    return student


def reinitialise(module: nn.Module) -> nn.Module:
    """Fresh weights for every submodule that knows how to draw them (``reset_parameters``, from
    the global RNG): the inherited architecture without the inherited weights."""
    for sub in module.modules():
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset) and sub is not module:
            reset()
    return module


def inherited_parts(teacher_model: Any, layers: dict[str, list[int]], weights: bool = True) -> tuple[dict, dict]:
    """(towers, heads) of a student inheriting from ``teacher_model`` (a TeacherModel): its
    weights, or (``weights=False``) only its architecture, freshly initialised."""
    model = teacher_model.model
    towers = {side: inherit_tower(getattr(model, f"{side}_tower"), side, layers.get(side)) for side in ("image", "text")}
    heads = {}
    for side in ("image", "text"):
        head = copy.deepcopy(getattr(model, f"{side}_head"))
        heads[side] = None if isinstance(head, nn.Identity) else head.requires_grad_(True)
    if not weights:
        for part in (*towers.values(), *heads.values()):
            if part is not None:
                reinitialise(part)
    return towers, heads
