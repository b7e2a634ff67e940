"""Rebuilding a trained model from a run directory or checkpoint folder, through the plugins."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from . import checkpoint as ckpt
from .compose import compose
from .config import TrainConfig
from .resume import saved_config
from .bundle import Bundle


@dataclass
class RestoredRun:
    config: TrainConfig
    checkpoint: Path
    run_dir: Path
    bundle: Bundle

    @property
    def model(self):
        return self.bundle.model


def load_run(path: str | Path, cache_dir: str | None = None) -> RestoredRun:
    """``path``: a run directory (its latest checkpoint) or a checkpoint folder. ``cache_dir``:
    where its towers find downloaded weights, instead of the run's own ``--cache-dir`` (a run
    evaluated on another machine)."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"'{path}' does not exist (expected a run directory or a checkpoint folder)")
    config, folder = saved_config(str(path), None)
    cfg = TrainConfig.from_dict(config, source=str(folder / "meta.json"))
    cfg.resume = None
    if cache_dir is not None:
        cfg.cache_dir = cache_dir
    bundle = compose(cfg)
    ckpt.load_weights(folder, bundle)
    bundle.eval()
    run_dir = folder.parent.parent if folder.parent.name == "checkpoints" else folder
    return RestoredRun(cfg, folder, run_dir, bundle)
