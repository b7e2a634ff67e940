"""WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022): evaluate the
weight-space interpolation (1 - alpha) * theta_start + alpha * theta between a run's starting
weights and its current ones.

A run saves its starting weights once, before its first step, in ``RUN/start/weights.safetensors``:
the floating-point state (parameters and buffers, so BatchNorm statistics are interpolated too,
as WiSE-FT's own code does) of every tower or head of the model that has a trainable parameter.
Locked towers are left out: they are the same at the start and now. safetensors only, so the file
is data and never code.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from ..errors import UsageError

START = Path("start") / "weights.safetensors"
PARTS = ("image_tower", "text_tower", "image_head", "text_head")


def check_alpha(alpha: float, flag: str) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"{flag} must be between 0 and 1 (the weight of the trained weights), not {alpha}")
    return alpha


def start_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's float tensors of its trainable parts, keyed as in ``model.state_dict()``."""
    state = {}
    for part in PARTS:
        module = getattr(model, part, None)
        if module is None or not any(p.requires_grad for p in module.parameters()):
            continue
        for key, value in module.state_dict().items():
            if value.is_floating_point():
                state[f"{part}.{key}"] = value.detach().cpu().clone().contiguous()  # clone: no shared storage
    return state


def save_start_weights(run_dir: Path, model: nn.Module) -> Path:
    """Write ``RUN/start/weights.safetensors`` atomically (a fresh run overwrites it)."""
    from safetensors.torch import save_file
    path = Path(run_dir) / START
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(start_state(model), str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk would stay full
        raise
    return path


def load_start_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from .._runfiles.runfiles import is_real_dir, is_regular
    path = Path(run_dir) / START
    if not path.is_file():
        raise UsageError(f"--wise-ft: run '{run_dir}' has no starting weights ({START}); it was "
                         "trained before vlkd saved them, so there is nothing to interpolate from")
    if not (is_real_dir(path.parent) and is_regular(path)):
        raise UsageError(f"--wise-ft: '{path}' is a symbolic link; a run folder holds plain files")
    try:
        return load_file(str(path))
    except Exception as exc:  # a damaged file: one line, not a traceback
        raise UsageError(f"--wise-ft: '{path}' is not a readable safetensors file ({str(exc)[:120]})") from None


@contextlib.contextmanager
def interpolated(model: nn.Module, start: dict[str, torch.Tensor], alpha: float) -> Iterator[nn.Module]:
    """Inside the block ``model`` holds (1 - alpha) * start + alpha * current (computed in float32);
    afterwards exactly its own weights again, so training continues bit for bit."""
    current = model.state_dict()
    missing = [key for key in start if key not in current]
    if missing:
        raise UsageError(f"--wise-ft: the starting weights do not match the model (e.g. '{missing[0]}')")
    saved = {key: current[key].detach().clone() for key in start}
    try:
        with torch.no_grad():
            for key, theta0 in start.items():
                target = current[key]
                mixed = (1 - alpha) * theta0.to(target.device, torch.float32) + alpha * saved[key].float()
                target.copy_(mixed.to(target.dtype))
        yield model
    finally:
        with torch.no_grad():
            for key, value in saved.items():
                current[key].copy_(value)


def prepare_start(run_dir: Path, model: nn.Module, resumed: bool, alpha: float | None) -> None:
    """At the start of training: a fresh run saves its starting weights; a resumed run keeps the
    ones it saved (a run from before they were saved cannot evaluate WiSE-FT: said up front)."""
    if not resumed:
        save_start_weights(run_dir, model)
    elif alpha is not None and not (Path(run_dir) / START).is_file():
        raise UsageError(f"--eval-wise-ft: run '{run_dir}' has no starting weights ({START}); "
                         "drop --eval-wise-ft to resume it")


def evaluate(evaluators: list, model: nn.Module, run_dir: Path, alpha: float | None) -> dict[str, float]:
    """The evaluators' metrics, plus (with ``alpha``) the same on the WiSE-FT weights as
    ``wise-ft/<metric>``."""
    from .evals import run_evaluators
    metrics = run_evaluators(evaluators, model)
    if alpha is not None and evaluators:
        with interpolated(model, load_start_weights(run_dir), alpha):
            metrics.update({f"wise-ft/{k}": v for k, v in run_evaluators(evaluators, model).items()})
    return metrics
