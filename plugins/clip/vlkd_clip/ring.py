"""Tensors passed around the ring of ranks with gradient: big_vision's chunked sigmoid loss, in
open_clip's forms, where each rank keeps its image rows and the text chunks travel.

Gradient convention (as the SDK's ``all_gather_with_grad``): what a rank received carries its gradient
back the way it came, so each rank's local tensor gets the sum over ranks of the gradients every
rank's loss puts on it.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from vlkd_core.sdk import all_gather_with_grad, rank, world_size

FORMS = ("bidir", "shift", "gather")  # open_clip's SigLipLoss dist_impl names


def _swap(tensors: tuple[torch.Tensor, ...], to_ranks: tuple[int, ...],
          from_ranks: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Send ``tensors[k]`` to ``to_ranks[k]`` and receive a tensor like it from ``from_ranks[k]``,
    all at once (point-to-point, so no rank ever holds more than one chunk per direction)."""
    received = tuple(torch.empty_like(x) for x in tensors)
    ops = [dist.P2POp(dist.isend, x.contiguous(), peer) for x, peer in zip(tensors, to_ranks)]
    ops += [dist.P2POp(dist.irecv, buf, peer) for buf, peer in zip(received, from_ranks)]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


class _Pass(torch.autograd.Function):
    """:func:`_swap` whose backward sends each received tensor's gradient back to its sender."""

    @staticmethod
    def forward(ctx, to_ranks, from_ranks, *tensors):  # type: ignore[override]
        ctx.to_ranks, ctx.from_ranks = to_ranks, from_ranks
        return _swap(tensors, to_ranks, from_ranks)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        return (None, None, *_swap(grads, ctx.from_ranks, ctx.to_ranks))


def _pass(tensors: list[torch.Tensor], to_ranks: list[int], from_ranks: list[int]) -> tuple[torch.Tensor, ...]:
    return _Pass.apply(tuple(to_ranks), tuple(from_ranks), *tensors)


def from_other_ranks(x: torch.Tensor, form: str = "bidir") -> list[tuple[int, torch.Tensor]]:
    """``x`` of every other rank as ``(its rank, its x)``, with gradient (``[]`` on one process).

    ``bidir``: each step passes one chunk left and one right, (W−1)//2 steps, and a last shift to
    the right when W−1 is odd (on 2 processes: one shift); ``shift``: W−1 steps to the right;
    ``gather``: one all-gather of every chunk."""
    r, w = rank(), world_size()
    if w == 1:
        return []
    if form == "gather":
        parts = all_gather_with_grad(x).chunk(w)
        return [((r + k) % w, parts[(r + k) % w]) for k in range(1, w)]
    left, right = (r - 1) % w, (r + 1) % w
    out: list[tuple[int, torch.Tensor]] = []
    to_left = to_right = x
    steps = (w - 1) // 2 if form == "bidir" else 0
    for k in range(1, steps + 1):  # after step k: the chunks of ranks r+k (from the right) and r−k
        to_left, to_right = _pass([to_left, to_right], [left, right], [right, left])
        out += [((r + k) % w, to_left), ((r - k) % w, to_right)]
    for k in range(steps + 1, w - steps):  # the rest one way, from the left: rank r−k
        (to_right,) = _pass([to_right], [right], [left])
        out.append(((r - k) % w, to_right))
    return out
