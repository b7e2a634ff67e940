"""LossInputs: everything the engine offers a loss in one training step, each part computed
the first time some loss reads it.

A loss takes what it reads, pytest-style, through the parameters of its ``forward``:

- its first two positional parameters (whatever their names) get ``student`` and ``teacher``,
  the classic call ``loss(student, teacher)`` (for a symmetric loss: image and text features);
- every other parameter named like a field below gets that field (``labels``, ``indices``,
  ``teacher_image``, ``student_tower_features``, ...);
- a parameter named ``inputs`` gets this object itself.

So ``def forward(self, student, teacher)`` works as it always has, and
``def forward(self, inputs)`` reads anything, lazily. A parameter the engine cannot fill (no
default, not a field) is refused when the run is composed, naming the loss and the parameter.

Fields (features are ``[B, D]``; a distilling loss gets the teacher's side detached):

    student, teacher            the loss's two inputs: after the heads by role; prototype logits
                                for a prototype loss; the two passes of a ``second_view`` loss
    image_features, text_features          each side after its head
    image_tower_features, text_tower_features   each side before its head (the tower's output)
    student_tower_features, teacher_tower_features  the same by role
    labels                      UniCL ids: caption ids, or class ids for labelled rows when the
                                loss sets ``LossNeeds.class_labels``
    caption_ids, class_ids      the two kinds of ids on their own (class_ids: -1 - label, or the
                                caption id for unlabelled rows)
    indices, keys, texts, batch each row's dataset index, sample key, caption; the whole batch
    teacher_image, teacher_text, teacher_logit_scale
                                a teacher *model*'s features and scale (``--teacher-model``);
                                reading them without one is an error naming the flag
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from ..errors import UsageError

FIELDS = ("student", "teacher", "image_features", "text_features", "image_tower_features",
          "text_tower_features", "student_tower_features", "teacher_tower_features", "labels",
          "caption_ids", "class_ids", "indices", "keys", "texts", "batch", "teacher_image",
          "teacher_text", "teacher_logit_scale")


class StepParts:
    """What one step has computed so far, shared by every loss of the step (memoised)."""

    def __init__(self, compute: dict[str, Callable[[], Any]]):
        self._compute, self._done = compute, {}

    def get(self, key: str) -> Any:
        if key not in self._done:
            if key not in self._compute:
                raise UsageError(f"loss inputs: '{key}' is not available in this run")
            self._done[key] = self._compute[key]()
        return self._done[key]


class LossInputs:
    """One loss's view of a step (see the module docstring for the fields)."""

    def __init__(self, parts: StepParts, pair: Callable[[], tuple[Any, Any]], roles: dict[str, str],
                 detach_side: str | None, labels_key: str):
        self._parts, self._pair, self._roles = parts, pair, roles
        self._detach, self._labels_key = detach_side, labels_key
        self._pair_value: tuple[Any, Any] | None = None

    def _side(self, key: str, side: str) -> Any:
        value = self._parts.get(key)
        return value.detach() if side == self._detach and hasattr(value, "detach") else value

    def _pair_once(self) -> tuple[Any, Any]:
        if self._pair_value is None:
            self._pair_value = self._pair()
        return self._pair_value

    @property
    def student(self):
        return self._pair_once()[0]

    @property
    def teacher(self):
        return self._pair_once()[1]

    def features(self, side: str, head: bool = True):
        """``side`` ("image" | "text" | "student" | "teacher") after (or before) its head."""
        side = self._roles.get(side, side)
        if side not in ("image", "text"):
            raise UsageError(f"loss inputs: side '{side}' is not image, text, student or teacher")
        return self._side(f"{side}_{'features' if head else 'tower'}", side)

    image_features = property(lambda self: self.features("image"))
    text_features = property(lambda self: self.features("text"))
    image_tower_features = property(lambda self: self.features("image", head=False))
    text_tower_features = property(lambda self: self.features("text", head=False))
    student_tower_features = property(lambda self: self.features("student", head=False))
    teacher_tower_features = property(lambda self: self.features("teacher", head=False))
    labels = property(lambda self: self._parts.get(self._labels_key))
    caption_ids = property(lambda self: self._parts.get("caption_ids"))
    class_ids = property(lambda self: self._parts.get("class_ids"))
    indices = property(lambda self: self._parts.get("indices"))
    keys = property(lambda self: self._parts.get("batch").keys)
    texts = property(lambda self: self._parts.get("batch").texts)
    batch = property(lambda self: self._parts.get("batch"))
    teacher_image = property(lambda self: self._teacher_model("image"))
    teacher_text = property(lambda self: self._teacher_model("text"))
    teacher_logit_scale = property(lambda self: self._teacher_model("logit_scale"))

    def _teacher_model(self, what: str):
        if not self._parts.get("has_teacher_model"):
            raise UsageError(f"the loss reads the teacher model's {what}, but the run has none: "
                             "pass --teacher-model SPEC")
        return self._parts.get(f"teacher_{what}")


class LossCall:
    """How the engine calls one loss, read once from its ``forward`` signature."""

    def __init__(self, loss: Any, name: str):
        params = [p for p in inspect.signature(loss.forward).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        self.whole = [p.name for p in params if p.name == "inputs"]
        named = [p for p in params if p.name in FIELDS and p.name not in ("student", "teacher")]
        rest = [p for p in params if p not in named and p.name != "inputs"]
        self.positional = rest[:2] if not self.whole else []
        self.by_name = [p.name for p in named]
        unfilled = [p.name for p in rest[len(self.positional):] if p.default is p.empty]
        if unfilled:
            raise UsageError(f"loss '{name}': forward parameter '{unfilled[0]}' is neither the student/teacher "
                             f"pair nor a loss-inputs field ({', '.join(FIELDS)}, inputs)")

    def __call__(self, loss: Any, inputs: LossInputs) -> Any:
        named = {name: getattr(inputs, name) for name in self.by_name}
        if self.whole:
            return loss(inputs=inputs, **named)
        return loss(*(inputs.student, inputs.teacher)[:len(self.positional)], **named)
