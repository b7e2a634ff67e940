"""TrainStep: features from both towers (through the frozen-tower cache), heads, weighted losses.

It is the module DDP wraps, and its state_dict (model, prototype heads, losses) is what a
checkpoint stores.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..contracts import loss_logs, loss_needs, loss_value
from ..model import to_device
from .cache import FeatureCache
from .compose import Composition
from .data import Batch


def caption_ids(texts: list[str]) -> torch.Tensor:
    """Identical captions get identical ids (UniCL-style positives). A hash of the text, not a
    per-batch counter, so ids agree across ranks when the loss gathers them."""
    import hashlib
    return torch.tensor([int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") >> 1
                         for t in texts], dtype=torch.long)


def contrastive_ids(batch: Batch, class_labels: bool) -> torch.Tensor:
    """Per row: the id of its class (when ``class_labels`` and the row has a label) or of its
    caption. Class ids are negative and caption ids non-negative, so the two never collide and
    a batch mixing labelled and unlabelled rows keeps every class's rows positives."""
    ids = caption_ids(batch.texts)
    if class_labels:
        labelled = batch.labels >= 0
        ids = torch.where(labelled, -1 - batch.labels.clamp(min=0), ids)
    return ids


class TrainStep(nn.Module):
    def __init__(self, comp: Composition, caches: dict[str, FeatureCache | None]):
        super().__init__()
        self.model, self.proto_heads, self.losses = comp.model, comp.proto_heads, comp.losses
        self.weights, self.student, self.teacher = comp.weights, comp.student, comp.teacher
        self.frozen = comp.frozen
        self._caches = caches  # plain dict: not part of the state_dict

    def train(self, mode: bool = True):
        from ..freeze import keep_frozen_in_eval
        super().train(mode)
        for side, frozen in self.frozen.items():  # locked towers always run in eval mode
            if frozen:
                getattr(self.model, f"{side}_tower").eval()
        keep_frozen_in_eval(self)  # partially unlocked towers: their frozen parts too
        return self

    def _tower(self, side: str, batch: Batch, device: torch.device) -> torch.Tensor:
        tower = getattr(self.model, f"{side}_tower")

        def run(positions: list[int] | None = None) -> torch.Tensor:
            if side == "image":
                images = batch.images if positions is None else batch.images[positions]
                return tower(images.to(device))
            texts = batch.texts if positions is None else [batch.texts[p] for p in positions]
            return tower(to_device(tower.preprocess(texts, train=self.training), device))

        if not self.frozen[side]:
            return run()
        cache = self._caches.get(side)
        if cache is None:
            with torch.no_grad():
                return run()
        keys = batch.texts if side == "text" else batch.keys
        return cache.features(keys, run).to(device)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        device = next(self.parameters()).device
        feats = {side: getattr(self.model, f"{side}_head")(self._tower(side, batch, device))
                 for side in ("image", "text")}
        student = self.student or "image"
        teacher = self.teacher or "text"
        total = torch.zeros((), device=device)
        logs: dict[str, float] = {}
        for name, loss in self.losses.items():
            needs = loss_needs(loss)
            s, t = feats[student], feats[teacher]
            if needs.prototype_head:
                s, t = self.proto_heads[student](s), self.proto_heads[teacher](t)
            kwargs: dict[str, Any] = {}
            if needs.labels:
                kwargs["labels"] = contrastive_ids(batch, needs.class_labels).to(device)
            out = loss(s, t.detach() if self.teacher and not needs.symmetric else t, **kwargs)
            value = loss_value(out)
            total = total + self.weights[name] * value
            logs[f"loss/{name}"] = float(value.detach())
            logs.update({f"{name}/{k}": v for k, v in loss_logs(out).items()})
        return total, logs
