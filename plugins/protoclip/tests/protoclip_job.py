"""The tiny ProtoCLIP job of the engine-level tests: toy towers on 32 px shapes, both towers
training, episodes of 64 samples (4 steps of 16 per epoch in one process)."""
from __future__ import annotations

from pathlib import Path

LOSS_OPTIONS = {"prototypes": 6, "projection_dim": 16, "projection_hidden_dim": 32, "kmeans_iters": 10,
                "kmeans_redo": 2, "kmeans_threads": 1, "silhouette_sample": 64, "figure_rows": 3, "figure_samples": 4}


def config(out: Path, name: str, **overrides):
    from vlkd_core.training import TrainConfig
    cfg = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, image_head=None,
               text_head=None, teacher="none", loss="protoclip", loss_options={"protoclip": dict(LOSS_OPTIONS)},
               data="shapes", data_options={"size": 32, "length": 256}, episode_size=64, batch_size=16,
               epochs=3, warmup_steps=2, log_every=1, progress=False, eval=[],
               output_dir=str(out), name=name)
    cfg.update(overrides)
    return TrainConfig(**cfg)
