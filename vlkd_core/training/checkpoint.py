"""Atomic checkpoints: weights in safetensors, training state loaded with weights_only=True.

Layout of ``RUN/checkpoints/step-000120/``: ``weights.safetensors`` (model, prototype heads and
loss state such as queues/centers/temperatures), ``training.pt`` (optimizer, scheduler, scaler,
RNG states, data position), ``meta.json`` (resolved config, versions, step). A checkpoint is
written to a temporary folder and renamed into place; ``LATEST`` names the newest one.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UsageError

LATEST = "LATEST"


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))


def plugin_versions() -> dict[str, str]:
    from ..plugins import get_plugin_manager
    return {info.distribution: info.version for info in get_plugin_manager().plugins.values()}


def save_checkpoint(run_dir: Path, step: int, state: nn.Module, training: dict[str, Any],
                    meta: dict[str, Any], keep: int = 2) -> Path:
    """Write atomically; prune all but the ``keep`` newest. Returns the checkpoint folder."""
    from safetensors.torch import save_model
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(state, str(tmp / "weights.safetensors"))
    torch.save(training, tmp / "training.pt")
    (tmp / "meta.json").write_text(json.dumps(dict(meta, step=step, versions=plugin_versions()),
                                              indent=2, default=str))
    if final.exists():  # re-saving the same step (e.g. final save right after a periodic one)
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / LATEST)
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep or None]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(resume: str, run_dir: Path | None = None) -> Path:
    """``latest`` (in ``run_dir``), a run directory, or a checkpoint folder."""
    path = Path(run_dir) if resume == "latest" else Path(resume)
    if resume == "latest" and run_dir is None:
        raise UsageError("--resume latest needs --name (or --output-dir/--name) of the run to resume")
    if (path / "weights.safetensors").exists():
        return path
    pointer = path / "checkpoints" / LATEST
    if pointer.exists():
        found = path / "checkpoints" / pointer.read_text().strip()
        if (found / "weights.safetensors").exists():
            return found
    raise UsageError(f"--resume '{resume}': no checkpoint found in '{path}'")


def load_weights(folder: Path, state: nn.Module) -> None:
    from safetensors.torch import load_model
    missing, unexpected = load_model(state, str(folder / "weights.safetensors"), strict=False)
    if missing or unexpected:
        raise UsageError(f"checkpoint '{folder}' does not match the model built from its config "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


def load_training_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / "training.pt", map_location="cpu", weights_only=True)


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "meta.json").read_text())
