"""Component contracts as Protocols (structural: plugins need not inherit anything)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Protocol, runtime_checkable

Modality = Literal["image", "text"]


@dataclass(frozen=True)
class LossNeeds:
    """What a loss asks of the training engine (read from ``loss.needs``): what changes the
    engine's work (a teacher role, prototype heads, a second pass, episodes, equal batch sizes
    for gathers, equal widths). What a loss *reads* in a step comes from the parameters of its
    ``forward`` (:mod:`vlkd_core._model.loss_inputs`); optional methods (``set_epoch``,
    ``after_optimizer_step``) are found by Protocol.

    A loss factory may also declare ``student_dim`` / ``teacher_dim`` keyword parameters to get
    the widths of its inputs at construction (:data:`vlkd_core.api.LOSS_WIDTHS`).

    teacher:        a KD loss: called as loss(student, teacher) with the teacher detached; the
                    engine refuses to run it with ``--teacher none``.
    symmetric:      both inputs are trainable features (InfoNCE: image, text); no teacher needed.
    prototype_head: operates on prototype logits [B, K]: the engine puts a prototype head on
                    each tower. ``True``: the user names the head (``--prototype-head``); a
                    head name (e.g. ``"dino"``): that head unless ``--prototype-head`` says
                    otherwise. Teacher and student heads share their prototype layer.
    gathers:        communicates across ranks (all-gather / all-reduce) under DDP: the engine
                    gives it batches of one size on every rank (when unreadable samples leave
                    ranks with different sizes, every rank trims to the smallest).
    labels:         (legacy, not needed) a ``labels`` parameter of ``forward`` gets UniCL ids:
                    identical captions share an id, so they are positives rather than negatives
                    (what a loss reads comes from its signature: :mod:`vlkd_core._model.loss_inputs`).
    class_labels:   with ``labels``: rows that carry a class label get an id of their class
                    (rows of one class are positives), the other rows their caption's id.
    epochs:         (legacy, not needed) the engine calls ``set_epoch`` on every loss that has
                    it (:class:`EpochScheduled`).
    same_dim:       student and teacher features must have the same width (False for losses
                    that compare each side only with itself, e.g. RKD).
    second_view:    ``"text"`` or ``"image"``: called as loss(view, view_again), two forward
                    passes of that side's tower and head on the same batch in train mode (their
                    dropout differs), e.g. SimCSE; the tower must be trainable.
    after_step:     (legacy, not needed) the engine calls ``after_optimizer_step()`` on every
                    loss that has it (:class:`AfterOptimizerStep`).
    episodes:       has ``start_episode(episode)``, which the engine calls at the start of every
                    epoch on every rank (after ``set_epoch``, before the first batch, also when a
                    run resumes mid-epoch) with a :class:`vlkd_core.training.episodes.Episode`:
                    the epoch's sample indices and, on demand, every sample encoded by each
                    tower + head (eval mode, no augmentation, identical on every rank). A loss
                    whose state for that episode came from the checkpoint must keep it.
    sample_ids:     (legacy, not needed) an ``indices`` parameter gets [B], the dataset index of
                    each row (e.g. to look up a cluster assignment made at the episode's start).
    """

    teacher: bool = True
    symmetric: bool = False
    prototype_head: bool | str = False
    gathers: bool = False
    labels: bool = False
    class_labels: bool = False
    epochs: bool = False
    same_dim: bool = True
    after_step: bool = False
    episodes: bool = False
    sample_ids: bool = False
    second_view: str | None = None

    @property
    def distils(self) -> bool:
        """A KD loss: it needs a teacher role, which it gets detached (``symmetric`` is the
        opposite of ``teacher``, kept for losses that set only one of them)."""
        return self.teacher and not self.symmetric


DEFAULT_NEEDS = LossNeeds()


def loss_needs(loss: Any) -> LossNeeds:
    return getattr(loss, "needs", DEFAULT_NEEDS)


def loss_value(output: Any):
    """The scalar of a loss output: the tensor itself, or ``output['loss']`` / ``output.loss``."""
    if isinstance(output, Mapping):
        return output["loss"]
    return getattr(output, "loss", output)


def loss_logs(output: Any) -> dict[str, float]:
    """Extra scalars a loss returned next to its value (for logging)."""
    if isinstance(output, Mapping):
        return {k: float(v) for k, v in output.items() if k != "loss"}
    return {}


@runtime_checkable
class Backbone(Protocol):
    modality: Modality
    output_dim: int

    def preprocess(self, inputs: Any, train: bool = False) -> Any:
        """image: one PIL image -> Tensor[C,H,W] (train adds augmentation);
        text: list[str] -> token tensor or dict of tensors for the whole batch."""

    def forward(self, inputs: Any) -> Any:
        """Batched preprocessed inputs -> Tensor[B, output_dim]."""


@runtime_checkable
class EpochScheduled(Protocol):
    """A loss with a schedule over epochs (DINO's teacher-temperature warm-up): the engine calls
    ``set_epoch(epoch, total_epochs)`` at the start of every epoch, on every rank."""

    def set_epoch(self, epoch: int, total_epochs: int) -> None: ...


@runtime_checkable
class AfterOptimizerStep(Protocol):
    """A loss with work after each optimizer step (InfoNCE clamps its logit scale in place, as
    OpenCLIP does, so the scale's gradient never dies at the cap): the engine calls it."""

    def after_optimizer_step(self) -> None: ...


@runtime_checkable
class EpochAware(Protocol):
    """A training dataset that changes per epoch (a streaming set reshuffling its shards): the
    engine calls ``set_epoch(epoch)`` at the start of every epoch, on every rank."""

    def set_epoch(self, epoch: int) -> None: ...


@runtime_checkable
class Evaluator(Protocol):
    def evaluate(self, model: Any, **kwargs: Any) -> dict[str, float]:
        """Score ``model`` (a :class:`vlkd_core._model.model.DualEncoder`) and return named metrics."""
