"""Pure evaluation metrics on features, scores and labels (no model involved).

Every function takes arrays or tensors and returns plain Python numbers or small dataclasses, so
each can be checked on hand-made embeddings. Features are assumed L2-normalised where a cosine is
meant (the functions normalise again where it matters, which is harmless).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _tensor(x, dtype=torch.float32) -> torch.Tensor:
    return x.detach().to(dtype=dtype, device="cpu") if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


def _array(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# -- zero-shot classification -----------------------------------------------------------------
def zeroshot_weights(class_text_features: torch.Tensor) -> torch.Tensor:
    """Classifier weights from prompt-template ensembles (CLIP's recipe).

    ``class_text_features`` is ``[C, T, D]`` (T templates per class): each template embedding is
    L2-normalised, the T embeddings of a class are averaged and the mean is normalised again.
    Returns ``[C, D]``.
    """
    feats = _tensor(class_text_features)
    if feats.dim() != 3:
        raise ValueError(f"class_text_features must be [C, T, D], got {tuple(feats.shape)}")
    return F.normalize(F.normalize(feats, dim=-1).mean(dim=1), dim=-1)


def topk_accuracy(scores, labels, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose true label is among the k highest scores, for each k (k is
    clipped to the number of classes, so top-5 of a 3-class problem is 1.0)."""
    scores, labels = _tensor(scores), _tensor(labels, torch.long)
    if len(labels) == 0:
        raise ValueError("topk_accuracy: no samples")
    out = {}
    for k in ks:
        kk = min(k, scores.shape[1])
        top = scores.topk(kk, dim=1).indices
        out[k] = float((top == labels[:, None]).any(dim=1).double().mean())
    return out


def per_class_recall(predictions, labels, num_classes: int) -> np.ndarray:
    """Recall of each class (NaN for classes absent from ``labels``)."""
    preds, labels = _array(predictions).astype(int), _array(labels).astype(int)
    recall = np.full(num_classes, np.nan)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            recall[c] = float((preds[mask] == c).mean())
    return recall


def mean_per_class_recall(predictions, labels, num_classes: int | None = None) -> float:
    """Mean over the classes present in ``labels`` of each class's recall (a.k.a. balanced
    accuracy, CLIP's "mean per class")."""
    labels_arr = _array(labels).astype(int)
    n = num_classes if num_classes is not None else int(labels_arr.max()) + 1
    return float(np.nanmean(per_class_recall(predictions, labels_arr, n)))


# -- retrieval --------------------------------------------------------------------------------
def _captions_per_image(owner: torch.Tensor, n_img: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[N, max captions per image] caption indices (padded) and their validity mask, so each block
    gathers its own captions' scores from the very matmul it ranks against (no float mismatch
    between paths); and the caption count of every image."""
    n_txt = owner.shape[0]
    counts = torch.bincount(owner, minlength=n_img)
    order = torch.argsort(owner, stable=True)
    sorted_owner = owner[order]
    slot = torch.arange(n_txt) - (torch.cumsum(counts, 0) - counts)[sorted_owner]
    width = int(counts.max())
    cap_idx = torch.zeros(n_img, width, dtype=torch.long)
    valid = torch.zeros(n_img, width, dtype=torch.bool)
    cap_idx[sorted_owner, slot] = order
    valid[sorted_owner, slot] = True
    return cap_idx, valid, counts


def _image_to_text_ranks(img, txt, cap_idx, valid, step: int) -> torch.Tensor:
    """Per image: how many captions score strictly above its best own caption."""
    ranks = torch.empty(img.shape[0], dtype=torch.long)
    for start in range(0, img.shape[0], step):
        rows = slice(start, start + step)
        sim = img[rows] @ txt.T                                               # [c, M]
        own = sim.gather(1, cap_idx[rows]).masked_fill(~valid[rows], float("-inf")).max(dim=1).values
        ranks[rows] = (sim > own[:, None]).sum(dim=1)
    return ranks


def _text_to_image_ranks(img, txt, owner, step: int) -> torch.Tensor:
    """Per caption: how many images score strictly above its own image."""
    ranks = torch.empty(txt.shape[0], dtype=torch.long)
    for start in range(0, txt.shape[0], step):
        rows = slice(start, start + step)
        sim = txt[rows] @ img.T                                               # [c, N]
        ranks[rows] = (sim > sim.gather(1, owner[rows, None])).sum(dim=1)
    return ranks


def retrieval_recall(image_features, text_features, text_to_image, ks: Sequence[int] = (1, 5, 10),
                     chunk_size: int = 1024, max_chunk_elements: int = 1 << 24) -> dict[str, float]:
    """Image↔text Recall@k with several captions per image.

    ``text_to_image[j]`` is the index of caption j's image. Image→text: an image counts as a hit
    at k if any of its captions ranks in its top k among all captions. Text→image: a caption is
    a hit if its image ranks in its top k among all images. Ranks count strictly higher
    similarities (ties resolve in favour of the correct item). The similarity matrix is built a
    block of at most ``chunk_size`` rows and ``max_chunk_elements`` entries at a time (64 MB of
    float32 by default), so 100k images × 500k captions run in bounded memory.

    Returns ``{"image_to_text_R@k": ..., "text_to_image_R@k": ...}``.
    """
    img = F.normalize(_tensor(image_features), dim=-1)
    txt = F.normalize(_tensor(text_features), dim=-1)
    owner = _tensor(text_to_image, torch.long)
    n_img, n_txt = img.shape[0], txt.shape[0]
    if owner.shape[0] != n_txt:
        raise ValueError("text_to_image must have one entry per caption")
    if n_img == 0 or n_txt == 0:
        raise ValueError("retrieval_recall: no images or no captions")
    if (owner < 0).any() or (owner >= n_img).any():
        raise ValueError("text_to_image holds an index outside the image range")

    cap_idx, valid, counts = _captions_per_image(owner, n_img)
    block = lambda cols: max(1, min(chunk_size, max_chunk_elements // max(cols, 1)))  # noqa: E731
    i2t_rank = _image_to_text_ranks(img, txt, cap_idx, valid, block(n_txt))
    t2i_rank = _text_to_image_ranks(img, txt, owner, block(n_img))
    i2t_rank = i2t_rank[counts > 0]  # images without any caption cannot be scored
    out = {}
    for k in ks:
        out[f"image_to_text_R@{k}"] = float((i2t_rank < k).double().mean())
    for k in ks:
        out[f"text_to_image_R@{k}"] = float((t2i_rank < k).double().mean())
    return out


# -- k-NN -------------------------------------------------------------------------------------
def knn_scores(train_features, train_labels, test_features, num_classes: int, k: int = 20,
               temperature: float = 0.07, chunk_size: int = 1024) -> torch.Tensor:
    """Weighted k-NN class scores (InstDisc / DINO): cosine similarities to the k nearest training
    features, each neighbour votes for its label with weight exp(sim / temperature).
    Returns ``[N_test, num_classes]`` summed votes."""
    train = F.normalize(_tensor(train_features), dim=-1)
    test = F.normalize(_tensor(test_features), dim=-1)
    labels = _tensor(train_labels, torch.long)
    k = min(k, train.shape[0])
    out = torch.zeros(test.shape[0], num_classes)
    for start in range(0, test.shape[0], chunk_size):
        sim = test[start:start + chunk_size] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(sim.shape[0], num_classes)
        votes.scatter_add_(1, labels[top_idx], weights)
        out[start:start + sim.shape[0]] = votes
    return out


# -- clustering -------------------------------------------------------------------------------
def clustering_agreement(labels, assignments) -> dict[str, float]:
    """NMI, AMI and ARI between true labels and cluster assignments (sklearn)."""
    from sklearn import metrics as skm
    y, a = _array(labels).astype(int), _array(assignments).astype(int)
    return {"nmi": float(skm.normalized_mutual_info_score(y, a)),
            "ami": float(skm.adjusted_mutual_info_score(y, a)),
            "ari": float(skm.adjusted_rand_score(y, a))}


def kmeans_assignments(features, n_clusters: int, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """k-means (sklearn) on L2-normalised features; returns one cluster id per row."""
    from sklearn.cluster import KMeans
    x = F.normalize(_tensor(features), dim=-1).numpy().astype(np.float64)
    n_clusters = min(n_clusters, len(x))
    return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(x)


def cluster_scores(features, labels, n_clusters: int | None = None, seed: int = 0) -> dict[str, float]:
    """k-means with as many clusters as classes (unless given), then NMI / AMI / ARI."""
    y = _array(labels).astype(int)
    n = n_clusters or len(np.unique(y))
    return clustering_agreement(y, kmeans_assignments(features, n, seed=seed))


# -- correlation ------------------------------------------------------------------------------
def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks)."""
    a, b = _array(x).astype(np.float64).ravel(), _array(y).astype(np.float64).ravel()
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("spearman: need two sequences of the same length >= 2")
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


# -- multi-label ------------------------------------------------------------------------------
def average_precision_11pt(scores, targets, sentinel: bool = True) -> float:
    """11-point interpolated AP of one class: the mean over recall levels r ∈ {0, 0.1, …, 1}
    of the highest precision reached at recall ≥ r (0 if never reached). Tied scores enter
    the ranking together.

    ``sentinel=True`` (default) also counts the empty prediction set as precision 1 at recall 0,
    as sklearn's ``precision_recall_curve`` and therefore vision-evaluation / ELEVATER do;
    ``sentinel=False`` is the PASCAL VOC 2007 devkit. They differ only at r = 0 when the
    top-scored samples are negatives.
    """
    s, t = _array(scores).astype(np.float64), _array(targets).astype(int) > 0
    if not t.any():
        raise ValueError("average_precision_11pt: class has no positive sample")
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    # one precision/recall point per distinct score threshold (tied scores enter together)
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(t)[last_of_tie]
    seen = np.arange(1, len(s) + 1)[last_of_tie]
    precision, recall = tp / seen, tp / t.sum()
    if sentinel:
        precision, recall = np.r_[1.0, precision], np.r_[0.0, recall]
    levels = np.linspace(0.0, 1.0, 11)
    return float(np.mean([precision[recall >= r - 1e-12].max() if (recall >= r - 1e-12).any() else 0.0
                          for r in levels]))


def mean_average_precision_11pt(scores, targets, sentinel: bool = True) -> float:
    """Mean over classes with at least one positive of the 11-point AP (ELEVATER's metric for
    VOC-2007 multi-label classification). ``scores``, ``targets``: ``[N, C]``."""
    s, t = _array(scores), _array(targets)
    aps = [average_precision_11pt(s[:, c], t[:, c], sentinel) for c in range(t.shape[1]) if (t[:, c] > 0).any()]
    if not aps:
        raise ValueError("mean_average_precision_11pt: no class has a positive sample")
    return float(np.mean(aps))


# -- linear probe -----------------------------------------------------------------------------
DEFAULT_CS = tuple(float(c) for c in np.logspace(-3, 3, 7))


def few_shot_indices(labels, shots: int, seed: int = 0) -> np.ndarray:
    """Indices of ``shots`` samples per class (all of a class if it has fewer), drawn with
    ``seed``; sorted so the subset is independent of class order."""
    y = _array(labels).astype(int)
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(y == c))[:shots] for c in np.unique(y)]
    return np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)


def validation_split(labels, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) carved from a training set: stratified when every class has at
    least two samples, otherwise a plain random split. Both parts are non-empty."""
    from sklearn.model_selection import train_test_split
    y = _array(labels).astype(int)
    idx = np.arange(len(y))
    if len(y) < 2:
        raise ValueError("validation_split: need at least 2 training samples")
    n_val = min(max(1, int(round(val_fraction * len(y)))), len(y) - 1)
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and n_val >= len(np.unique(y)) and \
        len(y) - n_val >= len(np.unique(y)) else None
    train_idx, val_idx = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(train_idx), np.sort(val_idx)


@dataclass
class LinearProbeResult:
    """Outcome of :func:`linear_probe`. ``val_scores`` maps each C to its validation accuracy
    (the only numbers used to pick ``best_C``); ``test_probs`` are the refitted model's class
    probabilities on the test features, columns in label order ``0..num_classes-1``."""

    best_C: float
    val_scores: dict[float, float]
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_probs: np.ndarray
    test_predictions: np.ndarray
    extra: dict = field(default_factory=dict)


def _fit_logreg(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, seed: int):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(x, y)


def _full_probs(model, x: np.ndarray, num_classes: int) -> np.ndarray:
    probs = np.zeros((len(x), num_classes))
    probs[:, model.classes_] = model.predict_proba(x)  # classes missing from train get 0
    return probs


def linear_probe(train_features, train_labels, test_features, num_classes: int | None = None,
                 Cs: Sequence[float] = DEFAULT_CS, val_fraction: float = 0.2, seed: int = 0,
                 max_iter: int = 1000) -> LinearProbeResult:
    """Logistic regression on frozen features (CLIP's linear-probe protocol).

    The inverse regularisation strength C is chosen on a validation split carved from the
    training set (never on the test set: the test features enter only after C is fixed, and test
    labels are not an argument at all); the model is then refitted on the whole training set
    with the chosen C and applied to ``test_features``.
    """
    x_train = _array(train_features).astype(np.float64)
    y_train = _array(train_labels).astype(int)
    x_test = _array(test_features).astype(np.float64)
    n_classes = num_classes if num_classes is not None else int(y_train.max()) + 1
    if len(np.unique(y_train)) < 2:
        raise ValueError("linear_probe: the training set must contain at least two classes")
    tr, va = validation_split(y_train, val_fraction, seed)
    val_scores: dict[float, float] = {}
    for C in Cs:
        if len(np.unique(y_train[tr])) < 2:  # degenerate tiny split: nothing to select on
            val_scores[float(C)] = 0.0
            continue
        model = _fit_logreg(x_train[tr], y_train[tr], float(C), max_iter, seed)
        val_scores[float(C)] = float((model.predict(x_train[va]) == y_train[va]).mean())
    best_C = max(val_scores, key=lambda c: (val_scores[c], -abs(np.log10(c))))  # ties: closest to 1
    final = _fit_logreg(x_train, y_train, best_C, max_iter, seed)
    probs = _full_probs(final, x_test, n_classes)
    return LinearProbeResult(best_C, val_scores, tr, va, probs, probs.argmax(axis=1))
