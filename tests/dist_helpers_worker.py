"""Per-rank code of tests/test_distributed.py (a plain module so spawned processes import it)."""
import torch

from vlkd_core._runtime import distributed as D


def collectives(batch: int, dim: int) -> dict:
    """Every helper on rank-dependent inputs, with the gradients they send back."""
    r, w = D.rank(), D.world_size()
    gen = torch.Generator().manual_seed(0)
    full = torch.randn(w * batch, dim, generator=gen)       # the same on every rank
    weights = torch.randn(w, w * batch, dim, generator=gen)  # rank r's loss weights
    x = full[r * batch:(r + 1) * batch].clone().requires_grad_(True)
    gathered = D.all_gather_with_grad(x)
    (gathered * weights[r]).sum().backward()

    y = full[r * batch:(r + 1) * batch].clone().requires_grad_(True)
    summed = D.all_reduce_sum(y)
    (summed * weights[r, :batch]).sum().backward()
    z = y.detach().clone().requires_grad_(True)
    mean = D.all_reduce_mean(z)
    (mean * weights[r, :batch]).sum().backward()
    return {"rank": r, "world": w, "distributed": D.is_distributed(), "gathered": gathered.detach(),
            "gather_grad": x.grad, "no_grad": D.all_gather_no_grad(x * 2), "sum": summed.detach(),
            "sum_grad": y.grad, "mean": mean.detach(), "mean_grad": z.grad,
            "no_grad_requires_grad": D.all_gather_no_grad(x).requires_grad}
