"""Clustering quality of image features: k-means (sklearn) with as many clusters as classes,
scored against the labels.

Metrics: ``clustering/nmi``, ``clustering/ami``, ``clustering/ari``.
Artifacts: ``assignments`` (cluster id per sample), ``labels``.
"""
from __future__ import annotations

from typing import Any

from .base import BaseEvaluator
from .features import encode_dataset
from .metrics import clustering_agreement, kmeans_assignments


class ClusteringEvaluator(BaseEvaluator):
    """Options: ``n_clusters`` (default: number of distinct labels), ``seed``."""

    name = "clustering"

    def __init__(self, n_clusters: int | None = None, seed: int = 0, **options: Any):
        super().__init__(**options)
        self.n_clusters, self.seed = n_clusters, seed

    def evaluate(self, model: Any, dataset: Any = None, **_: Any) -> dict[str, float]:
        dataset = self.resolve_dataset(dataset)
        data = encode_dataset(model, dataset, self.batch_size, self.max_samples, "clustering",
                              self.progress, need_labels=True, workers=self.workers)
        k = self.n_clusters or len(set(data.labels.tolist()))
        assignments = kmeans_assignments(data.image_features, k, seed=self.seed)
        self.artifacts = {"assignments": assignments.tolist(), "labels": data.labels.tolist()}
        return {self.key(k_): v for k_, v in clustering_agreement(data.labels, assignments).items()}
