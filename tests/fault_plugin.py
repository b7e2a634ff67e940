"""A test-only vlkd plugin that kills its own process at a chosen point, so fault tests are
deterministic instead of racing a timer.

It registers, through the ordinary hooks:
- backbone family ``fault`` with models ``plain`` and ``dropout`` (the toy towers; ``dropout`` adds
  ``nn.Dropout`` layers, which draw from the global RNG like dropout / stochastic depth in real
  towers). Its text tower mixes a 1e-6 share of the batch mean into every row, so a feature
  depends slightly on its batch neighbours, as padding and kernel choice do in real transformers.
- evaluator ``fault`` (a cheap metric; the kill point ``eval`` fires inside it).

``arm(point, n)`` (in a forked child) picks the kill point:
- ``step``: inside the image tower's n-th training forward (mid-step);
- ``save-write``: the n-th ``torch.save`` writes half of its file, then the process dies (mid-save);
- ``save-publish``: right after the n-th checkpoint folder is renamed into place, before ``LATEST``
  moves (mid-save, later phase);
- ``eval``: inside the n-th call of the ``fault`` evaluator (mid-eval);
- ``pause``: at the end of step n, create ``DIR/paused`` and wait until ``DIR/go`` exists (so a
  test can signal a run at a known step);
- ``lockstep``: after the k-th checkpoint is written (k = 1, 2, ...), write its folder name to
  ``DIR/saved-k`` and wait until ``DIR/go-k`` exists (so a test reads checkpoints at known
  points of the run's saving and pruning).

In a subprocess (the plugin installed through an entry point) ``VLKD_TEST_FAULT=point:n[:DIR]``
arms it at import.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch
from torch import nn

from vlkd_core.hookspecs import hookimpl
from vlkd_core._model.toy import ToyImageTower, ToyTextTower

ARMED: dict = {"point": None, "n": 0, "count": 0, "dir": None}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _tick(point: str) -> bool:
    if ARMED["point"] != point:
        return False
    ARMED["count"] += 1
    return ARMED["count"] == ARMED["n"]


def arm(point: str, n: int, folder: str | None = None) -> None:
    ARMED.update(point=point, n=n, count=0, dir=folder)
    if point == "save-write":
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            if _tick("save-write"):
                if hasattr(f, "flush"):  # vlkd saves through a file object (a full disk is then an OSError)
                    f.flush()
                path = getattr(f, "name", f)
                size = os.path.getsize(path)
                with open(path, "r+b") as fh:
                    fh.truncate(size // 2)
                die()
        torch.save = save
    elif point == "save-publish":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            real_replace(src, dst, *args, **kwargs)
            if os.path.basename(str(dst)).startswith("step-") and _tick("save-publish"):
                die()
        os.replace = replace


def _hold(marker: Path, go: Path, text: str) -> None:
    """Say where the run is (``marker``) and wait for the test's ``go`` (a file, not a timer).
    The marker appears whole (written aside, then renamed): a test polling for it never reads
    it half-written, which happened under load."""
    aside = marker.with_name(f".{marker.name}.{os.getpid()}")  # ranks of one run hold at once
    aside.write_text(text)
    os.replace(aside, marker)
    deadline = time.time() + 120
    while not go.exists() and time.time() < deadline:
        time.sleep(0.01)


@hookimpl
def vlkd_on_step_end(run, step, metrics):
    if ARMED["point"] == "pause" and step == ARMED["n"]:
        folder = Path(ARMED["dir"])
        _hold(folder / "paused", folder / "go", str(os.getpid()))


@hookimpl
def vlkd_on_checkpoint(run, path):
    if ARMED["point"] == "lockstep":
        ARMED["count"] += 1
        folder = Path(ARMED["dir"])
        _hold(folder / f"saved-{ARMED['count']}", folder / f"go-{ARMED['count']}", Path(path).name)


class FaultImageTower(ToyImageTower):
    def __init__(self, dropout: float, output_dim: int, image_size: int):
        super().__init__(16, output_dim, image_size)
        if dropout:
            layers = list(self.net)
            self.net = nn.Sequential(*layers[:-1], nn.Dropout(dropout), layers[-1])
            self.drop_in = nn.Dropout2d(dropout / 2)
        else:
            self.drop_in = nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training and _tick("step"):
            die()
        return self.net(self.drop_in(images))


class FaultTextTower(ToyTextTower):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = super().forward(ids)
        return x + 1e-6 * x.mean(0, keepdim=True)


def build(model: str, modality: str = "image", pretrained: str | None = None, output_dim: int = 64,
          image_size: int = 32) -> nn.Module:
    if modality == "text":
        return FaultTextTower(16, output_dim)
    return FaultImageTower(0.2 if model == "dropout" else 0.0, output_dim, image_size)


class FaultEvaluator:
    def __init__(self, **_):
        pass

    def evaluate(self, model, **_) -> dict[str, float]:
        if _tick("eval"):
            die()
        with torch.no_grad():
            weight = next(model.parameters())
        return {"fault/mean": float(weight.detach().double().mean())}


@hookimpl
def vlkd_register_backbones(register):
    register("fault", build, models=["plain", "dropout"], description="toy towers for fault tests")


@hookimpl
def vlkd_register_evaluators(register):
    register("fault", FaultEvaluator, description="a cheap metric with a kill point")


if os.environ.get("VLKD_TEST_FAULT"):
    _point, _n, *_dir = os.environ["VLKD_TEST_FAULT"].split(":", 2)
    arm(_point, int(_n), _dir[0] if _dir else None)
