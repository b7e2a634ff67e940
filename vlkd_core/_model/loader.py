"""``vlkd.load(RUN_OR_CHECKPOINT)``: a trained model, rebuilt through the plugins, ready to embed.

Reads a run directory (its newest valid checkpoint), a checkpoint folder, or a folder written by
``vlkd export --format safetensors`` (``config.json`` + ``model.safetensors``). All three are data:
weights come from safetensors only and the config is a checked TrainConfig, so nothing read can
run code. The towers' sources named in the config (local folders, cached weights) must be
reachable, as for ``vlkd eval RUN``; nothing is downloaded that training did not download.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import UsageError
from .loaded_model import LoadedModel
from .._runfiles.runfiles import is_regular, read_json

EXPORT_INFO = "vlkd_export.json"    # written by every `vlkd export` format
EXPORT_CONFIG = "config.json"       # the resolved TrainConfig (safetensors format)
EXPORT_WEIGHTS = "model.safetensors"  # the DualEncoder's state dict (safetensors format)


def load(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """A run directory, a checkpoint folder or a safetensors export -> :class:`LoadedModel` on
    ``device`` (eval mode). ``model.encode_image(images)``, ``model.encode_text(texts)``."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"vlkd.load: '{path}' does not exist (expected a run directory, a checkpoint "
                         "folder or a `vlkd export --format safetensors` folder)")
    if os.path.lexists(path / EXPORT_INFO):
        return _load_export(path, device)
    from ..training import checkpoint
    from ..training.restore import load_run
    restored = load_run(path)
    checkpoint.release(restored.checkpoint)  # the weights are in memory: pruning may go on
    return LoadedModel(restored.model, restored.config, restored.checkpoint, device)


def export_info(folder: Path) -> dict:
    """``vlkd_export.json``, read as data: a plain file holding an object with a ``format``."""
    try:
        info = read_json(folder / EXPORT_INFO)
    except UsageError as exc:
        raise UsageError(f"{exc} (not written by `vlkd export`?)") from None
    if not isinstance(info.get("format"), str):
        raise UsageError(f"'{folder / EXPORT_INFO}' names no format (not written by `vlkd export`?)")
    return info


def _load_export(folder: Path, device: str | torch.device) -> LoadedModel:
    from safetensors.torch import load_model

    from ..training.compose import compose
    from ..training.config import TrainConfig
    info = export_info(folder)
    if info["format"] != "safetensors":
        raise UsageError(f"'{folder}' is a '{info['format']}' export, which its own library loads; "
                         "vlkd.load reads run folders, checkpoints and safetensors exports")
    config_path = folder / EXPORT_CONFIG
    cfg = TrainConfig.from_dict(read_json(config_path), source=str(config_path))
    cfg.resume = None
    model = compose(cfg).model
    weights = folder / EXPORT_WEIGHTS
    if not is_regular(weights):
        raise UsageError(f"'{weights}' is missing or not a plain file")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except Exception as exc:  # a damaged file: one line, not a traceback
        raise UsageError(f"'{weights}' is not a readable safetensors file ({str(exc)[:120]})") from None
    if missing or unexpected:
        raise UsageError(f"'{weights}' does not match the model built from '{config_path}' "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    return LoadedModel(model, cfg, folder, device)
