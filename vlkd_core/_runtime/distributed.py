"""Cross-rank helpers for losses and the training engine.

Every helper is a no-op (returns its input, or a plain copy of it) when ``torch.distributed`` is
not available, not initialised, or the world has one process, so a loss written with them runs
unchanged in a single process.

Gradient convention: the collectives that carry gradients (:func:`all_gather_with_grad`,
:func:`all_reduce_sum`, :func:`all_reduce_mean`) send back, to each rank's local input, the sum
over ranks of the gradients every rank's loss puts on it, i.e. the gradient of
``Σ_r loss_r`` w.r.t. the local slice. DDP then averages parameter gradients over ranks, so the
objective optimised is ``mean_r loss_r`` — exactly the loss of one process on the concatenated
batch for every vlkd loss.
"""
from __future__ import annotations

import os
import socket
import tempfile
from typing import Any, Callable

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "world_size", "rank", "all_gather_with_grad", "all_gather_no_grad",
           "all_reduce_sum", "all_reduce_mean", "run_local_processes"]


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 without an initialised process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without an initialised process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward reduce-scatters the gradient: each rank receives the sum over
    ranks of its own slice only (world x less traffic than all-reducing the whole gathered
    gradient and keeping a slice of it; the same sums)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.local_shape = x.shape
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        local = torch.empty(ctx.local_shape, dtype=grad.dtype, device=grad.device)
        dist.reduce_scatter(local, list(grad.chunk(dist.get_world_size(), dim=0)), op=dist.ReduceOp.SUM)
        return local



class _ReduceSumWithGrad(torch.autograd.Function):
    """all_reduce(SUM) whose backward is again an all_reduce(SUM) of the incoming gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = x.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0 (rank order); gradients flow back to the
    local slice. Every rank must pass the same shape."""
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def all_gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0 (rank order), detached."""
    if not is_distributed():
        return x.detach()
    x = x.detach().contiguous()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x)
    return torch.cat(parts, dim=0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (a new tensor; differentiable, see the module docstring)."""
    if not is_distributed():
        return x
    if not torch.is_grad_enabled() or not x.requires_grad:
        out = x.detach().contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out
    return _ReduceSumWithGrad.apply(x)


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Element-wise mean over ranks (a new tensor; differentiable)."""
    if not is_distributed():
        return x
    return all_reduce_sum(x) / world_size()


# --- testing under a real process group (plugin tests, the contract kit) -------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _process_entry(rank_: int, world: int, port: int, out_dir: str, fn: Callable[..., Any],
                   args: tuple) -> None:
    torch.set_num_threads(1)  # several ranks share the machine's cores
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank_,
                            world_size=world)
    try:
        torch.save(fn(*args), os.path.join(out_dir, f"rank{rank_}.pt"))
    finally:
        dist.destroy_process_group()


def run_local_processes(fn: Callable[..., Any], world: int = 2, *args: Any) -> list[Any]:
    """Run ``fn(*args)`` in ``world`` fresh CPU processes joined in a gloo process group on
    127.0.0.1 (a free port) and return each rank's result, in rank order.

    ``fn`` must be importable by module name (defined at module level, its module on
    ``sys.path``) and its result saveable with ``torch.save``. Meant for tests.
    """
    with tempfile.TemporaryDirectory() as out_dir:
        torch.multiprocessing.spawn(_process_entry, args=(world, _free_port(), out_dir, fn, args),
                                    nprocs=world, join=True)
        return [torch.load(os.path.join(out_dir, f"rank{r}.pt"), weights_only=False)
                for r in range(world)]
