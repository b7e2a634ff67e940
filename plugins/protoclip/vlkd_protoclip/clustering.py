"""k-means (faiss, or scikit-learn without it), Prototypical Back Translation and the
clustering diagnostics, all on CPU float32 and deterministic for a given seed."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vlkd_core.errors import UsageError

BACKENDS = ("auto", "faiss", "sklearn")


@dataclass
class KMeansResult:
    centroids: torch.Tensor  # [K, D] float32
    labels: torch.Tensor     # [N] int64
    error: float             # mean squared distance of a sample to its centroid


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def kmeans(x: torch.Tensor, k: int, iters: int, redo: int, seed: int, backend: str = "auto",
           threads: int = 0) -> KMeansResult:
    """Cluster the rows of ``x`` [N, D] into ``k`` groups (Lloyd, ``redo`` restarts, best kept);
    ``threads`` > 0 caps faiss's OpenMP threads for this call (0: OpenMP's default)."""
    if backend not in BACKENDS:
        raise UsageError(f"loss 'protoclip': option kmeans_backend must be one of {BACKENDS}, got '{backend}'")
    if k > x.shape[0]:
        raise UsageError(f"loss 'protoclip': option prototypes={k} is more than the {x.shape[0]} samples "
                         "of an episode; lower it or raise --episode-size")
    data = np.ascontiguousarray(x.detach().float().cpu().numpy())
    if backend == "faiss" or (backend == "auto" and _faiss_available()):
        return _faiss_kmeans(data, k, iters, redo, seed, threads)
    return _sklearn_kmeans(data, k, iters, redo, seed)


def _faiss_kmeans(data: np.ndarray, k: int, iters: int, redo: int, seed: int, threads: int) -> KMeansResult:
    import faiss
    before = faiss.omp_get_max_threads()
    if threads:  # OpenMP is process-wide (torch shares it): set for this call only
        faiss.omp_set_num_threads(threads)
    try:
        km = faiss.Kmeans(data.shape[1], k, niter=iters, nredo=redo, seed=seed, verbose=False,
                          min_points_per_centroid=1, max_points_per_centroid=1 << 20)  # no subsampling
        km.train(data)
        distances, labels = km.index.search(data, 1)
    finally:
        faiss.omp_set_num_threads(before)
    return KMeansResult(torch.from_numpy(km.centroids.copy()), torch.from_numpy(labels[:, 0].astype(np.int64)),
                        float(distances.mean()))


def _sklearn_kmeans(data: np.ndarray, k: int, iters: int, redo: int, seed: int) -> KMeansResult:
    from sklearn.cluster import KMeans
    km = KMeans(n_clusters=k, n_init=redo, max_iter=iters, random_state=seed).fit(data)
    return KMeansResult(torch.from_numpy(km.cluster_centers_.astype(np.float32)),
                        torch.from_numpy(km.labels_.astype(np.int64)), float(km.inertia_) / len(data))


def translate(features: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Prototypical Back Translation: [K, D], row c the mean of ``features`` over the samples
    assigned to cluster c (0 for an empty cluster)."""
    sums = torch.zeros(k, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=k).clamp(min=1).to(features.dtype)
    return sums / counts[:, None]


DIAGNOSTICS = ("kmeans_error", "clusters_used", "size_min", "size_max", "size_std", "silhouette")


def diagnostics(x: torch.Tensor, result: KMeansResult, k: int, sample: int, seed: int) -> list[float]:
    """Values of :data:`DIAGNOSTICS`: k-means error, non-empty clusters, cluster-size min / max /
    std over the K clusters, and the silhouette (sklearn) on a seeded sample of ``sample`` rows."""
    sizes = torch.bincount(result.labels, minlength=k).float()
    return [result.error, float((sizes > 0).sum()), float(sizes.min()), float(sizes.max()),
            float(sizes.std()) if k > 1 else 0.0, _silhouette(x, result.labels, sample, seed)]


def _silhouette(x: torch.Tensor, labels: torch.Tensor, sample: int, seed: int) -> float:
    from sklearn.metrics import silhouette_score
    n = x.shape[0]
    pick = np.random.default_rng(seed).permutation(n)[:min(sample, n)]
    chosen = labels.numpy()[pick]
    if sample < 2 or not 2 <= len(np.unique(chosen)) <= len(pick) - 1:
        return math.nan  # undefined for one cluster or one sample per cluster
    return float(silhouette_score(x.numpy()[pick], chosen))
