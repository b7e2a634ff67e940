"""How a tower's parameters map to depth, for layer-wise learning-rate decay (``--layer-decay``).

A tower that supports it has two members (the engine uses nothing else):

- ``num_layers``: the depth of its top, an int (``None`` when this particular architecture is
  not mapped);
- ``layer_id(name) -> int``: the depth of the parameter ``name`` (as in the tower's own
  ``named_parameters()``), from 0 (stem / embeddings) to ``num_layers`` (final norm, pooling,
  projection).

The engine trains a parameter at depth d with ``lr * decay ** (num_layers - d)`` (BEiT, timm's
``param_groups_layer_decay``); heads on the tower are at the top (factor 1).

Most families only name their blocks: :class:`BlockDepth` (or the mixin
:class:`DepthFromBlocks`) gives the stem depth 0, the i-th block depth i + 1 and the rest the
top, ``len(blocks) + 1``.
"""
from __future__ import annotations

import re
from typing import Sequence

from torch import nn

# (block pattern, stem pattern): regular expressions over module / parameter names. Blocks are
# the modules whose whole name matches the block pattern, in registration (= forward) order.
Patterns = Sequence[tuple[str, str]]


class BlockDepth:
    """Depths of ``module``'s parameters from the first pattern pair whose block pattern matches
    some of its modules; ``num_layers`` is None when none does."""

    def __init__(self, module: nn.Module, patterns: Patterns):
        self.blocks: list[str] = []
        self.stem = None
        for block, stem in patterns:
            found = [name for name, _ in module.named_modules() if re.fullmatch(block, name)]
            if found:
                self.blocks, self.stem = found, re.compile(stem)
                break
        self.index = {name: i + 1 for i, name in enumerate(self.blocks)}
        self.num_layers = len(self.blocks) + 1 if self.blocks else None

    def layer_id(self, name: str) -> int:
        if self.num_layers is None:
            raise ValueError("this module's architecture has no depth map")
        parts = name.split(".")
        for end in range(len(parts) - 1, 0, -1):  # the longest enclosing block
            depth = self.index.get(".".join(parts[:end]))
            if depth is not None:
                return depth
        return 0 if self.stem.match(name) else self.num_layers


class DepthFromBlocks:
    """Mixin for towers: set ``DEPTH_PATTERNS`` (tried in order) and get ``num_layers`` and
    ``layer_id``. The map is built on first use, after adapters or prompts were added."""

    DEPTH_PATTERNS: Patterns = ()

    def _block_depth(self) -> BlockDepth:
        cached = self.__dict__.get("_vlkd_block_depth")
        if cached is None:
            cached = BlockDepth(self, self.DEPTH_PATTERNS)
            self.__dict__["_vlkd_block_depth"] = cached
        return cached

    @property
    def num_layers(self) -> int | None:
        return self._block_depth().num_layers

    def blocks(self) -> list[str]:
        """The names of the tower's blocks in depth order (``--inherit-layers`` picks among them)."""
        return list(self._block_depth().blocks)

    def layer_id(self, name: str) -> int:
        return self._block_depth().layer_id(name)
