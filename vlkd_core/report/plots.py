"""Matplotlib figures for a run report; each function writes one PNG and returns its path."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curves(train: list[dict], path: Path) -> Path:
    """Training loss (and each loss term) and learning rate against step."""
    steps = [r["step"] for r in train]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(steps, [r["loss"] for r in train], label="total", lw=2)
    for key in sorted({k for r in train for k in r if k.startswith("loss/")}):
        if len({k for r in train for k in r if k.startswith("loss/")}) > 1:
            ax1.plot(steps, [r.get(key, np.nan) for r in train], label=key[5:], alpha=0.7)
    ax1.set(xlabel="step", ylabel="loss", title="training loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(steps, [r["lr"] for r in train], color="tab:orange")
    ax2.set(xlabel="step", ylabel="learning rate", title="learning rate")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def metrics_over_training(evals: list[dict], path: Path) -> Path:
    keys = sorted({k for r in evals for k in r if k not in ("type", "step", "time")})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in keys:
        pts = [(r["step"], r[key]) for r in evals if key in r]
        ax.plot(*zip(*pts), marker="o", label=key)
    ax.set(xlabel="step", ylabel="value", title="evaluation metrics over training")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def per_class_bars(names: Sequence[str], accuracy: Sequence[float], title: str, path: Path) -> Path:
    order = np.argsort(accuracy)
    fig, ax = plt.subplots(figsize=(8, max(3, 0.32 * len(names))))
    ax.barh([names[i] for i in order], [accuracy[i] for i in order], color="tab:blue")
    ax.set(xlim=(0, 1), xlabel="accuracy (recall)", title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def retrieval_grid(queries: Sequence[str], images: Sequence, ranked: np.ndarray,
                   correct: np.ndarray, path: Path) -> Path:
    """One row per query caption with its top-k images; green frame = the caption's own image."""
    rows, k = ranked.shape
    fig, axes = plt.subplots(rows, k, figsize=(1.8 * k, 1.9 * rows), squeeze=False)
    for r in range(rows):
        for c in range(k):
            ax = axes[r][c]
            ax.imshow(images[ranked[r, c]])
            ax.set_xticks([]), ax.set_yticks([])
            colour = "limegreen" if correct[r, c] else "lightgray"
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(4)
        axes[r][0].set_title(queries[r], fontsize=8, loc="left")
    fig.suptitle("text → image retrieval: query caption, top images (green = its own image)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def embedding_map(points: np.ndarray, labels: Sequence[int], names: Sequence[str], path: Path,
                  method: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 6))
    labels = np.asarray(labels)
    for i, name in enumerate(names):
        mask = labels == i
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=12, label=name, alpha=0.8)
    ax.set(title=f"image embeddings ({method}), coloured by class", xticks=[], yticks=[])
    ax.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
