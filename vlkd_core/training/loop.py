"""``train(cfg)``: one run on this process (or one rank under torchrun), see :class:`Trainer`."""
from __future__ import annotations

from typing import Any

from .config import TrainConfig
from .runtime import setup_runtime, teardown_runtime
from .trainer import Trainer


def train(cfg: TrainConfig, console: Any = None) -> dict[str, Any]:
    """Train as configured; returns the run summary (also written to RUN/summary.json)."""
    runtime = setup_runtime()
    finished = False
    try:
        summary = Trainer(cfg, runtime, console).fit()
        finished = True
        return summary
    finally:
        teardown_runtime(runtime, finished)
