"""``--fsdp``: shard the trainable towers with FSDP2 (``fully_shard`` per block), and keep
checkpoints sharded: every rank writes its own slices as safetensors (data, never pickle).

    step-N/weights-rank00.safetensors   rank 0's slice of every sharded tensor, and every
                                        unsharded one (buffers, locked towers: rank 0 only)
    step-N/weights-rank01.safetensors   rank 1's slices
    step-N/optimizer-rank00.pt ...      each rank's optimizer state (its slices; weights_only)
    step-N/shards.json                  world size, and which tensors are sharded (dim 0)
    step-N/training.pt, meta.json       as in any checkpoint (scheduler, RNG, position)

FSDP2 shards dimension 0 into rank-ordered chunks, so a tensor is the concatenation of its
slices in rank order: :func:`full_weights` rebuilds the plain state dict anywhere (``vlkd eval``,
``vlkd_core.load``, a resume before sharding), and a resume with the same world size gets every
slice back exactly.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import UsageError

SHARDS = "shards.json"


def weights_file(rank: int) -> str:
    return f"weights-rank{rank:02d}.safetensors"


def optimizer_file(rank: int) -> str:
    return f"optimizer-rank{rank:02d}.pt"


def _is_dtensor(value: Any) -> bool:
    from torch.distributed.tensor import DTensor
    return isinstance(value, DTensor)


def blocks(tower: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a tower: the children of its largest ModuleList / Sequential
    (by parameter count) -- transformer layers, ResNet stages, the toy towers' layers."""
    best, best_size = [], 0
    for module in tower.modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) > 1:
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = [m for m in module if any(True for _ in m.parameters())], size
    return best


def shard(bundle: nn.Module) -> list[nn.Parameter]:
    """fully_shard each trainable tower's blocks, then the tower, then the whole bundle (heads,
    prototype heads, loss parameters and locked towers join the root group). Scalar parameters
    (e.g. a learnable temperature) cannot be sharded: they stay replicated, and are returned so
    the engine averages their gradients itself (:func:`average_replicated_grads`)."""
    from torch.distributed.fsdp import fully_shard
    for side in ("image", "text"):
        if bundle.frozen[side]:
            continue
        tower = bundle.tower(side)
        for block in blocks(tower):
            fully_shard(block)
        fully_shard(tower)
    scalars = [p for p in bundle.parameters() if p.dim() == 0]
    fully_shard(bundle, ignored_params=set(scalars))
    return scalars


def average_replicated_grads(params: list[nn.Parameter]) -> None:
    """What DDP would do for the parameters FSDP leaves replicated: the mean gradient over ranks."""
    import torch.distributed as dist
    for param in params:
        if param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.AVG)


@contextlib.contextmanager
def gradient_sync(module: nn.Module, sync: bool) -> Iterator[None]:
    """FSDP2's no_sync: between accumulation micro-batches, gradients are not reduce-scattered."""
    if sync:
        yield
        return
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


# -- sharded checkpoints ------------------------------------------------------------------------
def local_weights(bundle: nn.Module, rank: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    """This rank's slices of the sharded tensors (plus, on rank 0, every unsharded tensor), and
    the names of the sharded ones."""
    out, sharded = {}, []
    for name, value in bundle.state_dict().items():
        if _is_dtensor(value):
            out[name] = value.to_local().detach().cpu().contiguous()
            sharded.append(name)
        elif rank == 0:
            out[name] = value.detach().cpu().contiguous()
    return out, sharded


def full_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The plain state dict of a sharded checkpoint: slices concatenated in rank order."""
    from safetensors.torch import load_file
    world, _ = shards_info(folder)
    parts = [load_file(str(Path(folder) / weights_file(r))) for r in range(world)]
    full = dict(parts[0])
    for name in shards_info(folder)[1]:
        full[name] = torch.cat([part[name] for part in parts], dim=0)
    return full


def local_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict with each DTensor replaced by this rank's slice."""
    state = optimizer.state_dict()  # its per-parameter dicts are the optimizer's own: copy them
    state["state"] = {index: {key: value.to_local().detach().cpu().clone() if _is_dtensor(value) else value
                              for key, value in slot.items()}
                      for index, slot in state["state"].items()}
    return state


def load_local_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """The inverse of :func:`local_optimizer_state` on an optimizer over the same sharding."""
    from torch.distributed.tensor import DTensor
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def restored(param, value):
        if _is_dtensor(param) and torch.is_tensor(value) and value.dim() > 0 \
                and value.shape == param.to_local().shape:
            return DTensor.from_local(value.to(param.device), param.device_mesh, param.placements,
                                      shape=param.shape, stride=param.stride())
        return value
    state = dict(state, state={index: {key: restored(params[int(index)], value) for key, value in slot.items()}
                               for index, slot in state["state"].items()})
    optimizer.load_state_dict(state)


def check_world(folder: Path, world: int) -> None:
    saved, _ = shards_info(folder)
    if saved != world:
        raise UsageError(f"checkpoint '{folder}' was sharded over {saved} processes; resume it "
                         f"with --nproc-per-node x --nnodes = {saved} (not {world})")


def shards_info(folder: Path) -> tuple[int, list[str]]:
    """(world size, names of the sharded tensors) from ``shards.json``, checked as data."""
    from .._runfiles.runfiles import read_json
    path = Path(folder) / SHARDS
    info = read_json(path)
    world, sharded = info.get("world"), info.get("sharded")
    if not (isinstance(world, int) and 0 < world < 1 << 16 and isinstance(sharded, list)
            and all(isinstance(name, str) for name in sharded)):
        raise UsageError(f"'{path}' does not hold a world size and a list of sharded tensors")
    return world, sharded


def write_rank_files(tmp: Path, bundle: nn.Module, optimizer: torch.optim.Optimizer, rank: int) -> list[str]:
    """Write this rank's weights and optimizer slices into ``tmp``; returns the sharded names."""
    from safetensors.torch import save_file
    weights, sharded = local_weights(bundle, rank)
    from .._runfiles.storage import write_errors
    from .checkpoint import save_torch
    with write_errors(f"rank {rank}'s slices of checkpoint '{tmp}'", tmp):  # a full disk: one line
        save_file(weights, str(tmp / weights_file(rank)))
        save_torch(local_optimizer_state(optimizer), tmp / optimizer_file(rank))
    return sharded


def write_shards_info(tmp: Path, world: int, sharded: list[str]) -> None:
    (tmp / SHARDS).write_text(json.dumps({"world": world, "sharded": sharded}, indent=2))
