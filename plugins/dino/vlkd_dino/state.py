"""Buffers whose width (the number of prototypes K) is only known at the first call.

They are registered as ``[1, 0]`` placeholders so their names are always in ``state_dict()``;
the first call allocates them, and loading a state dict into a fresh loss adopts the saved shape.
"""
from __future__ import annotations

import torch
from torch import nn

from vlkd_core.errors import UsageError


class LazyRowState(nn.Module):
    """A module with ``[1, K]`` buffers (listed in ``_lazy_buffers``) sized at first use."""

    _lazy_buffers: tuple[str, ...] = ()

    def _register_lazy(self, name: str) -> None:
        self._lazy_buffers = self._lazy_buffers + (name,)
        self.register_buffer(name, torch.zeros(1, 0))

    def _row(self, name: str, like: torch.Tensor, fill: float) -> torch.Tensor:
        """The buffer ``name``, allocated as ``[1, K]`` filled with ``fill`` for logits like
        ``like`` [B, K] on first use."""
        row = getattr(self, name)
        k = like.shape[1]
        if row.shape[1] == 0:
            row = torch.full((1, k), fill, device=like.device)
            setattr(self, name, row)
        elif row.shape[1] != k:
            raise UsageError(f"loss '{type(self).__name__}': logits have {k} prototypes but the "
                             f"'{name}' buffer has {row.shape[1]}")
        return row

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for name in self._lazy_buffers:
            incoming, current = state_dict.get(prefix + name), getattr(self, name)
            if (incoming is not None and incoming.shape != current.shape
                    and incoming.shape[:-1] == current.shape[:-1]
                    and (current.numel() == 0 or incoming.numel() == 0)):
                setattr(self, name, torch.empty(incoming.shape, dtype=current.dtype, device=current.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
