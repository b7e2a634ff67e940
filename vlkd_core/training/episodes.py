"""The samples of one episode, encoded on demand, for losses that declare ``LossNeeds.episodes``.

At the start of every epoch (after the losses' ``set_epoch``, before the first batch, also when a
run resumes mid-epoch) the engine hands each such loss an :class:`Episode`::

    episode.epoch, episode.indices      # the epoch number; [N] dataset indices, episode order
    episode.rank, episode.world         # this process and the number of processes
    episode.features("image")           # [N, D] every sample through tower + head (also
    episode.features("student")         #   "text", "teacher"; head=False: the tower's output)
    episode.sample(i)                   # the raw dataset item {"image": PIL, "text": ...}
    episode.figures_dir                 # main rank: RUN/figures (PNGs `vlkd report` shows)

Nothing is encoded until a loss asks, so a loss that restored this episode's state from a
checkpoint costs nothing. Encoding runs in eval mode without augmentation and without gradient,
locked towers through their feature cache; each rank encodes a contiguous share of the episode
and an all_gather gives every rank the same full tensor in episode order. The caption of a
multi-caption sample is the one training draws in this epoch. Rows of unreadable samples are 0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from .._model import encoding
from .._runtime.distributed import all_gather_no_grad
from ..errors import UsageError
from ..datasets.sampling import derive_seed
from .._runtime.workers import default_workers
from .data import TrainView, collate

SIDES = ("image", "text")


class Episode:
    def __init__(self, epoch: int, indices: list[int], rank: int, world: int,
                 figures_dir: Path | None, encoder: "EpisodeEncoder"):
        self.epoch, self.rank, self.world, self.figures_dir = epoch, rank, world, figures_dir
        self.indices = torch.tensor(indices, dtype=torch.long)
        self._encoder = encoder
        self._features: dict[tuple[str, bool], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def features(self, side: str, head: bool = True) -> torch.Tensor:
        """[N, D] float32 on the training device: ``side`` is "image" / "text", or "student" /
        "teacher" (the loss's first / second input); ``head=False`` skips the side's head."""
        side = self._encoder.roles.get(side, side)
        if side not in SIDES:
            raise UsageError(f"episode features: side '{side}' is not image, text, student or teacher")
        if (side, head) not in self._features:  # one pass over the data encodes both sides
            encoded = self._encoder.encode(self.indices.tolist(), self.epoch, head)
            self._features.update({(s, head): value for s, value in encoded.items()})
        return self._features[side, head]

    def sample(self, position: int) -> dict[str, Any] | None:
        """The dataset item at ``position`` of the episode (PIL image, caption, ...)."""
        return self._encoder.dataset[int(self.indices[position])]


class EpisodeEncoder:
    """Runs the bundle's towers and heads over an episode's samples (one instance per run)."""

    def __init__(self, bundle, dataset, image_transform, seed: int, batch_size: int, workers: int | None,
                 rank: int, world: int, device: torch.device):
        self.bundle, self.dataset, self.transform = bundle, dataset, image_transform
        self.seed, self.batch_size, self.workers = seed, batch_size, workers
        self.rank, self.world, self.device = rank, world, device
        self.roles = {"student": bundle.student or "image", "teacher": bundle.teacher or "text"}

    def _loader(self, share: list[int], epoch: int) -> DataLoader:
        view = TrainView(self.dataset, self.transform, self.seed, train=False)
        view.epoch = epoch  # the epoch's caption choice
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "episode", epoch, self.rank))
        workers = default_workers(len(share), self.batch_size) if self.workers is None else self.workers
        return DataLoader(view, batch_size=self.batch_size, sampler=share, collate_fn=collate,
                          num_workers=workers, generator=generator)  # no draw from the global RNG

    @torch.no_grad()
    def encode(self, indices: list[int], epoch: int, head: bool) -> dict[str, torch.Tensor]:
        if len(indices) % self.world:
            raise UsageError(f"an episode of {len(indices)} samples does not split over {self.world} ranks")
        n = len(indices) // self.world
        share = indices[self.rank * n:(self.rank + 1) * n]
        row = {index: i for i, index in enumerate(share)}
        out: dict[str, torch.Tensor] = {}
        with encoding.evaluating(self.bundle):  # training's encoding (locked towers cached), eval mode
            for batch in self._loader(share, epoch):
                if not len(batch):
                    continue
                rows = torch.tensor([row[int(i)] for i in batch.indices])
                for side in SIDES:
                    value = self.bundle._encode(side, batch, self.device)
                    value = (self.bundle.head(side)(value) if head else value).float()
                    if side not in out:
                        out[side] = torch.zeros(n, value.shape[1], device=self.device)
                    out[side][rows.to(self.device)] = value
        if len(out) < len(SIDES):
            raise UsageError(f"every sample of the episode of epoch {epoch} on rank {self.rank} was unreadable")
        return {key: all_gather_no_grad(value) for key, value in out.items()}


def episode_for(trainer) -> Episode:
    """The Episode of ``trainer.epoch`` (the trainer's sampler already set to that epoch)."""
    if trainer.sampler is None:
        raise UsageError(f"loss '{trainer.config.loss}' trains in episodes, which need a dataset with a "
                         f"length; '{trainer.config.data}' streams (use a map-style dataset)")
    if getattr(trainer, "episode_encoder", None) is None:
        rt = trainer.runtime
        trainer.episode_encoder = EpisodeEncoder(
            trainer.bundle, trainer.dataset, trainer.view.transform, trainer.config.seed,
            trainer.config.batch_size, trainer.config.workers, rt.rank, rt.world, rt.device)
    figures = trainer.run_dir / "figures" if trainer.is_main else None
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
    return Episode(trainer.epoch, trainer.sampler.episode(), trainer.runtime.rank, trainer.runtime.world,
                   figures, trainer.episode_encoder)
