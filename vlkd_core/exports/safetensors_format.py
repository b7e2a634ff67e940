"""``safetensors``: the resolved config and the model's weights, for every run; what
``vlkd.load`` reads (it rebuilds the towers through the plugins, then loads the weights).
Smaller than a checkpoint: no optimizer, loss state or RNG."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._model.loader import EXPORT_CONFIG, EXPORT_WEIGHTS


class SafetensorsFormat:
    """Fits every run."""

    def fits(self, model: Any) -> str | None:
        return None

    def write(self, model: Any, folder: Path) -> dict:
        return write(model, folder)


def write(model: Any, folder: Path) -> dict:
    from safetensors.torch import save_model
    (folder / EXPORT_CONFIG).write_text(json.dumps(model.config.to_dict(), indent=2))
    save_model(model.model, str(folder / EXPORT_WEIGHTS))
    return {"files": {"config": EXPORT_CONFIG, "weights": EXPORT_WEIGHTS}, "load": "vlkd.load(FOLDER)"}
