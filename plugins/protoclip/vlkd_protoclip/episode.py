"""Prototype construction at the start of an episode: project the episode's features, cluster
each modality (and the external teacher), back-translate, measure, plot; rank 0 computes and every
rank receives the same tensors through torch.distributed.broadcast (no files)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vlkd_core.sdk import is_distributed
from vlkd_core.errors import UsageError

from . import clustering, figures


@torch.no_grad()
def project(head: nn.Module, features: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """z = normalize(g(features)) in eval mode (BatchNorm running statistics), on CPU."""
    was = head.training
    head.eval()
    try:
        parts = [F.normalize(head(features[i:i + batch]).float(), dim=1) for i in range(0, len(features), batch)]
    finally:
        head.train(was)
    return torch.cat(parts).cpu()


def external_features(source: str, episode) -> torch.Tensor | None:
    """The external teacher's features of the episode: a tower's own output ("image" / "text",
    before its head), or rows of a .npy file [dataset size, D] indexed by dataset index."""
    if source == "none":
        return None
    if source in ("image", "text"):
        return episode.features(source, head=False).float().cpu()
    path = Path(source)
    if path.suffix != ".npy" or not path.is_file():
        raise UsageError(f"loss 'protoclip': option external_teacher must be none, image, text or an "
                         f"existing .npy file, got '{source}'")
    table = np.load(path, mmap_mode="r", allow_pickle=False)  # data, never code
    if table.ndim != 2 or int(episode.indices.max()) >= table.shape[0]:
        raise UsageError(f"loss 'protoclip': external_teacher '{source}' has shape {table.shape}; it needs "
                         "one row per dataset sample")
    return torch.from_numpy(np.asarray(table[episode.indices.numpy()], dtype=np.float32))


def _cluster(loss, z: torch.Tensor, seed: int):
    return clustering.kmeans(z, loss.image_centroids.shape[0], loss.kmeans_iters, loss.kmeans_redo, seed, loss.kmeans_backend,
                             loss.kmeans_threads)


def compute(loss, episode, image: torch.Tensor, text: torch.Tensor, external: torch.Tensor | None) -> dict[str, Any]:
    """Rank 0: the new values of the loss's episode buffers."""
    k, seed = loss.image_centroids.shape[0], loss.kmeans_seed + episode.epoch
    z_i, z_t = project(loss.image_projection, image), project(loss.text_projection, text)
    km_i, km_t = _cluster(loss, z_i, seed), _cluster(loss, z_t, seed + 1)
    state: dict[str, Any] = {
        "image_labels": km_i.labels, "text_labels": km_t.labels,
        "image_centroids": km_i.centroids, "text_centroids": km_t.centroids,
        # what each side is scored against: the other side's prototypes, or (PBT) its own
        # features averaged over the other side's clusters
        "image_targets": clustering.translate(z_i, km_t.labels, k) if loss.pbt else km_t.centroids,
        "text_targets": clustering.translate(z_t, km_i.labels, k) if loss.pbt else km_i.centroids}
    diag = clustering.diagnostics(z_i, km_i, k, loss.silhouette_sample, seed)
    diag += clustering.diagnostics(z_t, km_t, k, loss.silhouette_sample, seed)
    groups = {"image": km_i.labels, "text": km_t.labels}
    if external is not None:
        km_e = _cluster(loss, external, seed + 2)
        state.update(external_labels=km_e.labels,
                     image_external_targets=clustering.translate(z_i, km_e.labels, k),
                     text_external_targets=clustering.translate(z_t, km_e.labels, k))
        diag += clustering.diagnostics(external, km_e, k, loss.silhouette_sample, seed)
        groups["external teacher"] = km_e.labels
    state["diagnostics"] = torch.tensor(diag + [0.0] * (loss.diagnostics.numel() - len(diag)))
    if episode.figures_dir is not None and loss.figure_rows and loss.figure_samples:
        figures.cluster_samples(Path(episode.figures_dir) / f"{loss.figure_name}-clusters.png", episode.epoch,
                                groups, episode.sample, loss.figure_rows, loss.figure_samples)
    return state


def start(loss, episode) -> None:
    """Build (rank 0) and share (all ranks) the prototypes of ``episode``."""
    image, text = episode.features("student"), episode.features("teacher")  # collectives: every rank
    external = external_features(loss.external_teacher, episode)
    loss.resize_episode(len(episode))
    loss.prepare_prototypes(len(episode))  # every rank: the broadcast needs the buffers' shape
    loss.sample_index.copy_(episode.indices)
    if episode.rank == 0:
        for name, value in compute(loss, episode, image, text, external).items():
            getattr(loss, name).copy_(value)
    if is_distributed():
        for name in loss.episode_buffers():
            dist.broadcast(getattr(loss, name), src=0)
