"""ProtoCLIP written out independently (float64 numpy loops), to check the module against."""
from __future__ import annotations

import numpy as np


def _log_softmax(v: np.ndarray) -> np.ndarray:
    m = v.max()
    return v - m - np.log(np.exp(v - m).sum())


def infonce(x: np.ndarray, y: np.ndarray, scale: float) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    logits = scale * x @ y.T
    n = len(x)
    return float(-np.mean([_log_softmax(logits[i])[i] for i in range(n)])
                 - np.mean([_log_softmax(logits[:, i])[i] for i in range(n)])) / 2


def proto(z: np.ndarray, targets: np.ndarray, centroids: np.ndarray | None, assigned: np.ndarray,
          scale: float, temperature: float) -> float:
    """mean_n −Σ_k q_nk log softmax_k(scale · z_n·P_k), q_n = softmax_k(C[a_n]·C_k / τ) or one-hot."""
    total = 0.0
    for n in range(len(z)):
        logp = _log_softmax(scale * np.array([z[n] @ p for p in targets]))
        if temperature > 0 and centroids is not None:
            q = np.exp(_log_softmax(np.array([centroids[assigned[n]] @ c for c in centroids]) / temperature))
        else:
            q = np.eye(len(targets))[assigned[n]]
        total += -(q * logp).sum()
    return total / len(z)


def back_translate(z: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Row c: the mean of z over the samples labelled c (0 for none)."""
    out = np.zeros((k, z.shape[1]))
    for c in range(k):
        members = [z[n] for n in range(len(z)) if labels[n] == c]
        if members:
            out[c] = np.mean(members, axis=0)
    return out
