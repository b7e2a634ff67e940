"""Zero-shot classification with prompt-template ensembles.

Metrics: ``zeroshot/top1``, ``zeroshot/top5``, ``zeroshot/mean_per_class_recall``.
Artifacts: ``classnames``, ``per_class`` (list of ``{"class", "recall", "count"}``),
``predictions`` (top-1 class per sample), ``labels``, ``scores`` (``[N, C]`` cosine logits).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from ..errors import UsageError
from .base import BaseEvaluator
from .features import encode_dataset, encode_texts
from .metrics import mean_per_class_recall, per_class_recall, topk_accuracy, zeroshot_weights
from .prompts import format_prompt, resolve_list


def classifier_from_prompts(model: Any, classnames: Sequence[str], templates: Sequence[str],
                            show_progress: bool = False) -> torch.Tensor:
    """``[C, D]`` zero-shot weights: every class × template prompt encoded, then ensembled."""
    prompts = [format_prompt(t, c) for c in classnames for t in templates]
    feats = encode_texts(model, prompts, description="encoding prompts", show_progress=show_progress)
    return zeroshot_weights(feats.view(len(classnames), len(templates), -1))


def class_metadata(dataset: Any, classnames, templates, who: str) -> tuple[list[str], list[str]]:
    """Class names and templates: explicit options win, else the dataset's attributes."""
    names = resolve_list(classnames, "classnames") or list(getattr(dataset, "classnames", []) or [])
    temps = resolve_list(templates, "templates") or list(getattr(dataset, "templates", []) or []) \
        or ["a photo of a {}."]
    if not names:
        raise UsageError(f"{who}: the dataset has no 'classnames'; set the option classnames= "
                         f"(a shipped set such as 'cifar10' or a list)")
    return names, temps


class ZeroShotEvaluator(BaseEvaluator):
    """Options (besides :class:`BaseEvaluator`'s): ``classnames`` and ``templates`` — a shipped
    set name (``"cifar10"``) or a list; default: the dataset's ``classnames`` / ``templates``."""

    name = "zeroshot"

    def __init__(self, classnames: str | list[str] | None = None,
                 templates: str | list[str] | None = None, **options: Any):
        super().__init__(**options)
        self.classnames, self.templates = classnames, templates

    def evaluate(self, model: Any, dataset: Any = None, **_: Any) -> dict[str, float]:
        dataset = self.resolve_dataset(dataset)
        names, templates = class_metadata(dataset, self.classnames, self.templates, self.name)
        weights = classifier_from_prompts(model, names, templates, self.progress)
        data = encode_dataset(model, dataset, self.batch_size, self.max_samples,
                              "zero-shot", self.progress, need_labels=True, workers=self.workers)
        scores = data.image_features @ weights.T
        top = topk_accuracy(scores, data.labels, (1, 5))
        preds = scores.argmax(dim=1)
        recall = per_class_recall(preds, data.labels, len(names))
        counts = torch.bincount(data.labels, minlength=len(names)).tolist()
        self.artifacts = {
            "classnames": names, "labels": data.labels.tolist(), "predictions": preds.tolist(),
            "scores": scores,
            "per_class": [{"class": n, "recall": float(r), "count": int(c)}
                          for n, r, c in zip(names, recall, counts)],
        }
        return {self.key("top1"): top[1], self.key("top5"): top[5],
                self.key("mean_per_class_recall"): mean_per_class_recall(preds, data.labels, len(names))}
