"""Linear probes for ELEVATER: multi-class through vlkd's core probe (C chosen on a validation
split carved from the training shots), multi-label as one-vs-rest logistic regression with C
chosen by validation 11-point mAP."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vlkd_core.evaluation.metrics import linear_probe, mean_average_precision_11pt, validation_split


def few_shot_subset(targets: np.ndarray, shots: int, seed: int, num_classes: int | None = None) -> np.ndarray:
    """Sorted indices of the subset vision-datasets' greedy few-shot sampler (the one the ELEVATER
    toolkit uses) draws for ``seed``: ``shots`` labels per class. ``targets``: ``[N]`` class ids
    or ``[N, C]`` multi-hot. The sampler sees only the order and the labels of the images, so a
    manifest rebuilt from the targets gives the subset the dataset's own manifest would.
    Raises ValueError when a class has too few images."""
    from vision_datasets.common import (CategoryManifest, DatasetManifest, DatasetTypes, ImageDataManifest,
                                        SampleByFewShotConfig, SampleFewShot)
    from vision_datasets.image_classification import ImageClassificationLabelManifest
    targets = np.asarray(targets)
    multilabel = targets.ndim == 2
    labels = [np.flatnonzero(row) for row in targets] if multilabel else [[t] for t in targets]
    n_classes = num_classes or (targets.shape[1] if multilabel else int(targets.max()) + 1)
    images = [ImageDataManifest(i, str(i), 0, 0, [ImageClassificationLabelManifest(int(c)) for c in labs])
              for i, labs in enumerate(labels)]
    kind = DatasetTypes.IMAGE_CLASSIFICATION_MULTILABEL if multilabel else DatasetTypes.IMAGE_CLASSIFICATION_MULTICLASS
    manifest = DatasetManifest(images, [CategoryManifest(c, str(c)) for c in range(n_classes)], kind)
    try:
        sampled = SampleFewShot(SampleByFewShotConfig(random_seed=seed, n_shots=shots)).sample(manifest)
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None
    return np.sort(np.array([img.id for img in sampled.images], dtype=int))


def carve_validation(targets: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, validation positions) within the training shots, both non-empty:
    stratified for multi-class sets, a seeded random split for multi-label ones."""
    if targets.ndim == 1:
        return validation_split(targets, val_fraction, seed)
    order = np.random.default_rng(seed).permutation(len(targets))
    n_val = min(max(1, int(round(val_fraction * len(order)))), len(order) - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def probe_probs(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int,
                Cs: Sequence[float], val_fraction: float, seed: int, max_iter: int) -> tuple[np.ndarray, float]:
    """Test probabilities ``[N, C]`` and the chosen C."""
    if train_y.ndim == 1:
        res = linear_probe(train_x, train_y, test_x, num_classes, Cs, val_fraction, seed, max_iter)
        return res.test_probs, res.best_C
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    tr, va = carve_validation(train_y, val_fraction, seed)

    def fit(x, y, C):
        keep = y.any(axis=0)  # classes without a positive cannot be fitted; they score 0
        model = OneVsRestClassifier(LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
        model.fit(x, y[:, keep])
        return lambda z: _scatter(model.predict_proba(z), keep)

    scores = {}
    for C in Cs:
        if len(tr) < 2 or not train_y[va].any():
            scores[float(C)] = 0.0
            continue
        scores[float(C)] = mean_average_precision_11pt(fit(train_x[tr], train_y[tr], C)(train_x[va]), train_y[va])
    best = max(scores, key=lambda c: (scores[c], -abs(np.log10(c))))
    return fit(train_x, train_y, best)(test_x), best


def _scatter(p: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = np.zeros((len(p), len(keep)))
    out[:, keep] = p
    return out
