"""Bundle: everything a run trains, in one ``nn.Module``.

The towers and heads (a :class:`DualEncoder`), the prototype heads, the losses with their
weights, and the roles (which side is the teacher). DDP wraps it, the optimizer takes its
parameters, a checkpoint stores its ``state_dict()`` (keys ``model.*``, ``proto_heads.*``,
``losses.*``), and its ``forward(batch)`` is one training step's loss.

What the engine does for a loss is decided by its :class:`LossNeeds` (prototype heads, a
second pass, a detached teacher) and by the optional methods it has (``set_epoch``,
``after_optimizer_step``, found by Protocol); what it reads in a step comes from its
``forward`` parameters through :class:`~vlkd_core._model.loss_inputs.LossInputs`. The core never asks a
loss for its name.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import torch
from torch import nn

from .._model import encoding
from ..contracts import AfterOptimizerStep, EpochScheduled, LossNeeds, loss_needs, loss_value
from .._model.loss_inputs import LossCall, LossInputs, StepParts
from .._model.freeze import keep_frozen_in_eval
from .._model.model import DualEncoder
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
        self._calls = {name: LossCall(loss, name) for name, loss in losses.items()}  # what each reads
        self.use_teacher_model(None)

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

    def use_teacher_model(self, teacher: nn.Module | None, text_cache: FeatureCache | None = None,
                          stored: Any = None) -> None:
        """A ``--teacher-model`` (a :class:`~.teacher_model.TeacherModel`) whose features the
        losses may read. Kept outside the module tree: not a parameter, not in the state dict,
        not wrapped by DDP; ``text_cache`` holds its caption embeddings; ``stored`` (a
        :class:`~vlkd_core.features.reinforce.ReinforcedTeacher`) answers for it from a
        reinforced store, so it never runs."""
        object.__setattr__(self, "teacher_model", teacher)
        object.__setattr__(self, "_teacher_text_cache", text_cache)
        object.__setattr__(self, "_teacher_stored", stored)

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
        for loss in self.losses.values():
            if isinstance(loss, EpochScheduled):  # e.g. DINO's teacher-temperature warm-up
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
            if isinstance(loss, AfterOptimizerStep):  # e.g. InfoNCE clamps its logit scale in place
                loss.after_optimizer_step()

    # -- one step -----------------------------------------------------------------------------
    def _encode(self, side: str, batch: Batch, device: torch.device) -> torch.Tensor:
        """The tower's output on ``batch`` (:mod:`vlkd_core._model.encoding`): in the bundle's mode for a
        trainable tower; a locked one without gradient, through its feature cache when it has one."""
        tower = self.tower(side)

        def run(positions: list[int] | None = None) -> torch.Tensor:
            return encoding.forward(tower, None, self._inputs(side, batch, positions), device)

        if not self.frozen[side]:
            return run()
        cache = self._caches.get(side)
        if cache is None:  # a normal tensor, which a trainable head may save for backward
            return encoding.features(tower, None, self._inputs(side, batch, None), device)
        return cache.features(cache.keys_for(side, batch), run).to(device)

    def _inputs(self, side: str, batch: Batch, positions: list[int] | None) -> Any:
        """The tower's input for the rows at ``positions`` (None: all): the loader's images; the
        loader's tokens, or the captions tokenised here (training preprocess in train mode)."""
        if side == "image":
            return batch.images if positions is None else batch.images[positions]
        if batch.tokens is not None and positions is None:  # tokenised by the loader
            return batch.tokens
        texts = batch.texts if positions is None else [batch.texts[p] for p in positions]
        return encoding.tokens(self.tower(side), texts, train=self.training)

    def step_parts(self, batch: Batch, device: torch.device) -> StepParts:
        """Everything a loss of this step may read (:mod:`vlkd_core._model.loss_inputs`), each computed
        once, when first read."""
        towers = {side: (lambda side=side: self._encode(side, batch, device)) for side in SIDES}
        compute: dict[str, Any] = {"batch": lambda: batch, "has_teacher_model": lambda: False}
        for side in SIDES:
            compute[f"{side}_tower"] = towers[side]
            compute[f"{side}_features"] = lambda side=side: self.head(side)(parts.get(f"{side}_tower"))
            compute[f"{side}_again"] = lambda side=side: self.head(side)(self._encode(side, batch, device))
            compute[f"{side}_prototypes"] = lambda side=side: self.proto_heads[side](parts.get(f"{side}_features"))
        compute["caption_ids"] = lambda: contrastive_ids(batch, False).to(device)
        compute["labels_class"] = lambda: contrastive_ids(batch, True).to(device)
        compute["class_ids"] = compute["labels_class"]
        compute["indices"] = lambda: batch.indices.to(device)
        if self.teacher_model is not None:
            compute.update(self._teacher_parts(batch, device))
        parts = StepParts(compute)
        return parts

    def _teacher_parts(self, batch: Batch, device: torch.device) -> dict[str, Any]:
        """The teacher model's features of the batch: its own rendering of the student's crops,
        and its caption embeddings through a cache."""
        teacher, cache, stored = self.teacher_model, self._teacher_text_cache, self._teacher_stored
        scale = {"has_teacher_model": lambda: True,
                 "teacher_logit_scale": lambda: torch.tensor(teacher.logit_scale, device=device)}
        if stored is not None:  # a reinforced store: the teacher's features of these very views
            return {**scale, "teacher_image": lambda: stored.image(batch.keys, batch.views).to(device),
                    "teacher_text": lambda: stored.text(batch.keys, batch.texts).to(device)}

        def text() -> torch.Tensor:
            def run(positions: list[int]) -> torch.Tensor:
                return teacher.encode_texts([batch.texts[p] for p in positions], device)
            if cache is None:
                return run(list(range(len(batch))))
            return cache.features(batch.texts, run).to(device)

        def image() -> torch.Tensor:
            if batch.teacher_images is None:
                raise RuntimeError("the loader gave no teacher-model views (PairedViews)")
            return teacher.encode_image(batch.teacher_images, device)
        return {**scale, "teacher_image": image, "teacher_text": text}

    def loss_inputs(self, parts: StepParts, needs: LossNeeds) -> LossInputs:
        """One loss's view of the step: its student/teacher pair by its needs, the teacher's
        side detached when it distils."""
        student, teacher = self.student or "image", self.teacher or "text"
        distils = bool(self.teacher) and needs.distils
        detach = teacher if distils else None

        def pair():
            if needs.second_view:
                side = needs.second_view
                return parts.get(f"{side}_features"), parts.get(f"{side}_again")
            key = "prototypes" if needs.prototype_head else "features"
            s, t = parts.get(f"{student}_{key}"), parts.get(f"{teacher}_{key}")
            return s, t.detach() if distils else t
        return LossInputs(parts, pair, {"student": student, "teacher": teacher}, detach,
                          "labels_class" if needs.class_labels else "caption_ids")

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """The weighted sum of the losses on ``batch``, and per-loss values for the logs (detached
        tensors: the trainer turns them into numbers only on steps that log, so other steps never
        wait for the device)."""
        device = next(self.parameters()).device
        parts = self.step_parts(batch, device)
        for side in SIDES:  # every step runs both towers (DDP expects every trainable parameter used)
            parts.get(f"{side}_features")
        total = torch.zeros((), device=device)
        logs: dict[str, torch.Tensor | float] = {}
        for name, loss in self.losses.items():
            out = self._calls[name](loss, self.loss_inputs(parts, loss_needs(loss)))
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
