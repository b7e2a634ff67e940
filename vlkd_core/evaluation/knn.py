"""Weighted k-NN classification on frozen image features (InstDisc / DINO protocol).

Metrics: ``knn/top1``, ``knn/top5``, ``knn/mean_per_class_recall``.
Artifacts: ``predictions``, ``labels``, ``per_class``.
"""
from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .base import TrainTestEvaluator
from .linear_probe import num_classes_of
from .metrics import knn_scores, mean_per_class_recall, per_class_recall, topk_accuracy


class KNNEvaluator(TrainTestEvaluator):
    """Options: ``k`` (neighbours, default 20), ``temperature`` (vote weight exp(sim/T),
    default 0.07), ``chunk_size`` (test rows compared at once)."""

    name = "knn"

    def __init__(self, k: int = 20, temperature: float = 0.07, chunk_size: int = 1024, **options: Any):
        super().__init__(**options)
        if k < 1 or temperature <= 0:
            raise UsageError(f"knn: need k >= 1 and temperature > 0 (got k={k}, temperature={temperature})")
        self.k, self.temperature, self.chunk_size = k, temperature, chunk_size

    def evaluate(self, model: Any, dataset: Any = None, train_dataset: Any = None, **_: Any) -> dict[str, float]:
        train, test = self.train_test_features(model, dataset, train_dataset)
        n_classes = num_classes_of(dataset if dataset is not None else train_dataset, train.labels, test.labels)
        scores = knn_scores(train.image_features, train.labels, test.image_features, n_classes,
                            self.k, self.temperature, self.chunk_size)
        top = topk_accuracy(scores, test.labels, (1, 5))
        preds = scores.argmax(dim=1)
        names = list(getattr(dataset, "classnames", None) or range(n_classes))
        recall = per_class_recall(preds, test.labels, n_classes)
        self.artifacts = {"predictions": preds.tolist(), "labels": test.labels.tolist(),
                          "per_class": [{"class": str(n), "recall": float(r)} for n, r in zip(names, recall)]}
        return {self.key("top1"): top[1], self.key("top5"): top[5],
                self.key("mean_per_class_recall"): mean_per_class_recall(preds, test.labels, n_classes)}
