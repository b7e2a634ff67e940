"""Linear probe: logistic regression on frozen image features.

C is selected on a validation split carved from the training features, never on the test set
(see :func:`vlkd_core.evaluation.metrics.linear_probe`). With ``shots=k`` the probe is fitted on
k samples per class, once per seed in ``seeds``, and the metrics are averaged over seeds.

Metrics: ``linear_probe/top1``, ``linear_probe/top5``, ``linear_probe/mean_per_class_recall``,
``linear_probe/val_top1`` (validation accuracy at the chosen C) and ``linear_probe/best_C``
(geometric mean over seeds).
Artifacts: ``runs`` (per seed: ``best_C``, ``val_scores``, ``top1``), ``per_class`` (first
seed), ``predictions`` and ``labels`` (first seed), ``probs`` (``[seeds, N, C]`` numpy array).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import UsageError
from .base import TrainTestEvaluator
from .metrics import (DEFAULT_CS, few_shot_indices, linear_probe, mean_per_class_recall,
                      per_class_recall, topk_accuracy)


def num_classes_of(dataset: Any, *label_sets: torch.Tensor) -> int:
    names = getattr(dataset, "classnames", None)
    top = max(int(l.max()) for l in label_sets if len(l)) + 1
    return max(len(names), top) if names else top


class LinearProbeEvaluator(TrainTestEvaluator):
    """Options: ``Cs`` (grid of inverse regularisation strengths), ``val_fraction`` (share of
    the training set held out to choose C), ``shots`` (samples per class; None = all),
    ``seeds`` (few-shot subsets), ``max_iter`` (LBFGS iterations)."""

    name = "linear-probe"

    def __init__(self, Cs: Sequence[float] = DEFAULT_CS, val_fraction: float = 0.2,
                 shots: int | None = None, seeds: Sequence[int] = (0,), max_iter: int = 1000,
                 prefix: str | None = None, **options: Any):
        super().__init__(prefix=prefix or "linear_probe", **options)
        Cs = [Cs] if isinstance(Cs, (int, float)) else Cs  # a single value from the command line
        seeds = [seeds] if isinstance(seeds, int) else seeds
        if not Cs:
            raise UsageError("linear-probe: Cs must list at least one value")
        if shots is not None and shots < 1:
            raise UsageError(f"linear-probe: shots must be >= 1 (or None for all), not {shots}")
        self.Cs, self.val_fraction = tuple(float(c) for c in Cs), val_fraction
        self.shots, self.seeds, self.max_iter = shots, tuple(seeds) or (0,), max_iter

    def evaluate(self, model: Any, dataset: Any = None, train_dataset: Any = None, **_: Any) -> dict[str, float]:
        train, test = self.train_test_features(model, dataset, train_dataset)
        n_classes = num_classes_of(dataset if dataset is not None else train_dataset, train.labels, test.labels)
        runs, all_probs = [], []
        for seed in self.seeds:
            idx = np.arange(len(train.labels)) if self.shots is None else \
                few_shot_indices(train.labels.numpy(), self.shots, seed)
            result = linear_probe(train.image_features[idx], train.labels[idx], test.image_features,
                                  n_classes, self.Cs, self.val_fraction, seed, self.max_iter)
            top = topk_accuracy(torch.from_numpy(result.test_probs), test.labels, (1, 5))
            runs.append({"seed": seed, "best_C": result.best_C, "val_scores": result.val_scores,
                         "val_top1": result.val_scores[result.best_C], "top1": top[1], "top5": top[5],
                         "mean_per_class_recall": mean_per_class_recall(result.test_predictions, test.labels, n_classes),
                         "predictions": result.test_predictions})
            all_probs.append(result.test_probs)
        mean = lambda k: float(np.mean([r[k] for r in runs]))  # noqa: E731
        first = runs[0]
        recall = per_class_recall(first["predictions"], test.labels, n_classes)
        names = list(getattr(dataset, "classnames", None) or range(n_classes))
        self.artifacts = {
            "runs": [{k: v for k, v in r.items() if k != "predictions"} for r in runs],
            "per_class": [{"class": str(n), "recall": float(r)} for n, r in zip(names, recall)],
            "predictions": first["predictions"].tolist(), "labels": test.labels.tolist(),
            "probs": np.stack(all_probs),
        }
        return {self.key("top1"): mean("top1"), self.key("top5"): mean("top5"),
                self.key("mean_per_class_recall"): mean("mean_per_class_recall"),
                self.key("val_top1"): mean("val_top1"),
                self.key("best_C"): runs[0]["best_C"] if len(runs) == 1 else
                float(math.exp(np.mean([math.log(r["best_C"]) for r in runs])))}
