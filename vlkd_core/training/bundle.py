"""Bundle: everything a run trains, in one ``nn.Module``.

The towers and heads (a :class:`DualEncoder`), the prototype heads, the losses with their
weights, and the roles (which side is the teacher). DDP wraps it, the optimizer takes its
parameters, a checkpoint stores its ``state_dict()`` (keys ``model.*``, ``proto_heads.*``,
``losses.*``), and its ``forward(batch)`` is one training step's loss.

What each loss receives is decided by its :class:`LossNeeds` only: labels, prototype logits, a
detached teacher, ``set_epoch`` and ``after_optimizer_step`` calls. The core never asks a loss
for its name.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import torch
from torch import nn

from ..contracts import LossNeeds, loss_needs, loss_value
from ..freeze import keep_frozen_in_eval
from ..model import DualEncoder, to_device
from .cache import FeatureCache
from .data import Batch
from .step import contrastive_ids

SIDES = ("image", "text")


class Bundle(nn.Module):
    def __init__(self, model: DualEncoder, losses: nn.ModuleDict, weights: dict[str, float],
                 proto_heads: nn.ModuleDict, teacher: str | None):
        super().__init__()
        self.model, self.losses, self.proto_heads = model, losses, proto_heads
        self.weights = dict(weights)
        self.teacher = teacher                                  # "image" | "text" | None
        self.student = None if teacher is None else ("image" if teacher == "text" else "text")
        self.frozen = {side: not any(p.requires_grad for p in self.tower(side).parameters())
                       for side in SIDES}
        self._caches: dict[str, FeatureCache | None] = {}       # plain dict: not in the state_dict

    # -- what the parts need ------------------------------------------------------------------
    def tower(self, side: str) -> nn.Module:
        return getattr(self.model, f"{side}_tower")

    def head(self, side: str) -> nn.Module:
        return getattr(self.model, f"{side}_head")

    def needs(self) -> dict[str, LossNeeds]:
        return {name: loss_needs(loss) for name, loss in self.losses.items()}

    def gathers(self) -> bool:
        """Some loss communicates across ranks (its inputs must have one size on every rank)."""
        return any(n.gathers for n in self.needs().values())

    def named_parameters_by_side(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Parameters in the optimizer's groups: each tower with its head, and the rest."""
        groups = {side: list(self.tower(side).named_parameters())
                  + [("head." + n, p) for n, p in self.head(side).named_parameters()] for side in SIDES}
        groups["other"] = list(self.proto_heads.named_parameters()) + list(self.losses.named_parameters())
        return groups

    def use_caches(self, caches: dict[str, FeatureCache | None]) -> None:
        """Feature caches for locked towers (side -> cache or None)."""
        self._caches = caches

    # -- engine calls -------------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        for side in SIDES:  # locked towers always run in eval mode
            if self.frozen[side]:
                self.tower(side).eval()
        keep_frozen_in_eval(self)  # partially unlocked towers: their frozen parts too
        return self

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        for name, loss in self.losses.items():
            if loss_needs(loss).epochs:  # schedules such as DINO's teacher-temperature warm-up
                loss.set_epoch(epoch, total_epochs)

    def start_episode(self, make_episode: Callable[[], Any]) -> None:
        """Hand the epoch's Episode to the losses that declare ``needs.episodes``; it is built
        only when one does (``make_episode`` is the engine's builder)."""
        wanting = [loss for loss in self.losses.values() if loss_needs(loss).episodes]
        if wanting:
            episode = make_episode()
            for loss in wanting:
                loss.start_episode(episode)

    def after_optimizer_step(self) -> None:
        for loss in self.losses.values():
            if loss_needs(loss).after_step:  # e.g. InfoNCE clamps its logit scale in place
                loss.after_optimizer_step()

    # -- one step -----------------------------------------------------------------------------
    def _encode(self, side: str, batch: Batch, device: torch.device) -> torch.Tensor:
        tower = self.tower(side)

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
            with torch.inference_mode():  # cheaper than no_grad: no autograd or version counters
                out = run()
            return out.clone()  # a normal tensor again, which a trainable head may save for backward
        return cache.features(cache.keys_for(side, batch), run).to(device)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """The weighted sum of the losses on ``batch``, and per-loss values for the logs (detached
        tensors: the trainer turns them into numbers only on steps that log, so other steps never
        wait for the device)."""
        device = next(self.parameters()).device
        feats = {side: self.head(side)(self._encode(side, batch, device)) for side in SIDES}
        student, teacher = self.student or "image", self.teacher or "text"
        total = torch.zeros((), device=device)
        logs: dict[str, torch.Tensor | float] = {}
        again: dict[str, torch.Tensor] = {}  # second passes, once per side and step
        for name, loss in self.losses.items():
            needs = loss_needs(loss)
            s, t = feats[student], feats[teacher]
            if needs.second_view:
                side = needs.second_view
                if side not in again:
                    again[side] = self.head(side)(self._encode(side, batch, device))
                s, t = feats[side], again[side]
            elif needs.prototype_head:
                s, t = self.proto_heads[student](s), self.proto_heads[teacher](t)
            kwargs: dict[str, Any] = {}
            if needs.labels:
                kwargs["labels"] = contrastive_ids(batch, needs.class_labels).to(device)
            if needs.sample_ids:
                kwargs["indices"] = batch.indices.to(device)
            out = loss(s, t.detach() if self.teacher and not needs.symmetric else t, **kwargs)
            value = loss_value(out)
            total = total + self.weights[name] * value
            logs[f"loss/{name}"] = value.detach()
            logs.update({f"{name}/{k}": v for k, v in _raw_logs(out).items()})
        return total, logs


def _raw_logs(output: Any) -> dict[str, torch.Tensor | float]:
    """A loss's extra scalars as they are (detached tensors stay on the device; see
    :func:`vlkd_core.contracts.loss_logs` for the numbers)."""
    if not isinstance(output, Mapping):
        return {}
    return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in output.items() if k != "loss"}
