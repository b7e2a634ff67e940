"""Per-rank code of test_protoclip_distributed.py: a real Trainer in a 2-process gloo group; the
loss's start_episode is wrapped to record what each rank saw and built at every episode."""
from __future__ import annotations

from pathlib import Path

import torch

from vlkd_core.sdk import rank, world_size
from vlkd_core.training.runtime import Runtime
from vlkd_core.training.trainer import Trainer

from protoclip_job import config

STATE = ("sample_index", "image_labels", "text_labels", "image_centroids", "text_centroids",
         "image_targets", "text_targets", "diagnostics")


def run(out: str) -> list[dict]:
    trainer = Trainer(config(Path(out), "ddp", epochs=2, episode_size=128), Runtime(rank(), world_size()))
    loss = trainer.bundle.losses["protoclip"]
    seen: list[dict] = []
    original = loss.start_episode

    def record(episode) -> None:
        original(episode)
        seen.append({"epoch": episode.epoch, "indices": episode.indices.clone(),
                     "image": episode.features("image").clone(), "text": episode.features("text").clone(),
                     **{name: getattr(loss, name).clone() for name in STATE}})
    loss.start_episode = record
    trainer.fit()
    return seen
