"""Per-rank code of tests/test_gather_grad.py (a plain module so spawned processes import it)."""
import torch
import torch.distributed as dist

from vlkd_core._runtime import distributed as D


def _all_reduce_then_slice(grad: torch.Tensor) -> torch.Tensor:
    """The gather's backward before it reduce-scattered: sum the whole gathered gradient over
    ranks, keep this rank's slice."""
    full = grad.contiguous().clone()
    dist.all_reduce(full, op=dist.ReduceOp.SUM)
    n = grad.shape[0] // dist.get_world_size()
    return full[dist.get_rank() * n:(dist.get_rank() + 1) * n]


def gather_grads(batch: int, dim: int, dtype: str) -> dict:
    """The gradient all_gather_with_grad sends to this rank's slice under an InfoNCE-like loss,
    and the previous all-reduce form's gradient for the same upstream gradient."""
    r = D.rank()
    gen = torch.Generator().manual_seed(r + 1)
    x = torch.randn(batch, dim, generator=gen, dtype=getattr(torch, dtype)).requires_grad_(True)
    other = torch.randn(D.world_size() * batch, dim, generator=gen, dtype=x.dtype)
    gathered = D.all_gather_with_grad(x)
    gathered.retain_grad()
    logits = gathered @ other.T * (r + 2.0)  # each rank's loss differs
    torch.nn.functional.cross_entropy(logits, torch.arange(len(logits))).backward()
    return {"grad": x.grad.detach(), "reference": _all_reduce_then_slice(gathered.grad.detach()),
            "upstream": gathered.grad.detach()}
