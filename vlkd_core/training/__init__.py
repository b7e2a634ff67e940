"""The training engine: a readable recipe (trainer.py) over small components.

Imported lazily, so that ``vlkd train --help`` (which reads config.py) does not load torch."""
from __future__ import annotations

from typing import Any

_EXPORTS = {"TrainConfig": ".config", "TowerConfig": ".config", "load_config_file": ".config", "train": ".loop",
            "Trainer": ".trainer", "config_for_resume": ".resume"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
