"""Linear probes for ELEVATER: multi-class through vlkd's core probe (C chosen on a validation
split carved from the training shots), multi-label as one-vs-rest logistic regression with C
chosen by validation 11-point mAP."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vlkd_core.evaluation.metrics import linear_probe, mean_average_precision_11pt


def few_shot_subset(targets: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """``shots`` images per class; for multi-label sets a greedy pass that adds an image while
    one of its classes still needs images (as vision-datasets' few-shot sampler does)."""
    rng = np.random.default_rng(seed)
    if targets.ndim == 1:
        from vlkd_core.evaluation.metrics import few_shot_indices
        return few_shot_indices(targets, shots, seed)
    need = np.full(targets.shape[1], shots)
    picked = []
    for i in rng.permutation(len(targets)):
        if (need[targets[i] > 0] > 0).any():
            picked.append(i)
            need[targets[i] > 0] -= 1
        if (need <= 0).all():
            break
    return np.sort(np.array(picked, dtype=int))


def probe_probs(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int,
                Cs: Sequence[float], val_fraction: float, seed: int, max_iter: int) -> tuple[np.ndarray, float]:
    """Test probabilities ``[N, C]`` and the chosen C."""
    if train_y.ndim == 1:
        res = linear_probe(train_x, train_y, test_x, num_classes, Cs, val_fraction, seed, max_iter)
        return res.test_probs, res.best_C
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train_y))
    n_val = max(1, int(round(val_fraction * len(order))))
    va, tr = order[:n_val], order[n_val:]

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
