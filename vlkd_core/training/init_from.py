"""``--init-from RUN_OR_CHECKPOINT``: a new run starts from another run's towers and heads.

For a run in stages (LiT with a locked text tower, then both towers unlocked): the second run
has its own config (locks, losses, schedule) and its weights start from the first run's
checkpoint. Only the model (towers and heads) is taken, matched by name and shape; the losses'
state, the optimizer and the data position start fresh. A tensor of the new model that the
checkpoint lacks, or has with another shape, is a one-line error naming it. A resumed run
ignores the option: its own checkpoint holds everything.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import UsageError
from . import checkpoint as ckpt

PREFIX = "model."


def initial_weights(source: str) -> dict[str, torch.Tensor]:
    """The ``model.*`` tensors of the newest valid checkpoint of ``source`` (a run or checkpoint)."""
    from safetensors.torch import load_file
    folder = ckpt.find_checkpoint(str(Path(source).expanduser()))
    try:
        if (folder / "shards.json").is_file():
            from .fsdp import full_weights
            state = full_weights(folder)
        else:
            state = load_file(str(folder / "weights.safetensors"))
    finally:
        ckpt.release(folder)
    return {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}


def init_from(model: nn.Module, source: str) -> None:
    """Copy ``source``'s towers and heads into ``model`` (a DualEncoder), every tensor of it."""
    given = initial_weights(source)
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in given:
            raise UsageError(f"--init-from {source}: its checkpoint has no '{key}' (built from "
                             "another tower or head?)")
        if given[key].shape != tensor.shape:
            raise UsageError(f"--init-from {source}: '{key}' is {tuple(given[key].shape)} there and "
                             f"{tuple(tensor.shape)} here")
    model.load_state_dict({key: given[key] for key in own})
