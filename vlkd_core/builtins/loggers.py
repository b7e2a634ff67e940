"""Builtin loggers over the lifecycle hooks: a JSONL metrics file and tensorboard event files.
Both write on the main rank only, into the run directory."""
from __future__ import annotations

import json
import time

from vlkd_core.hookspecs import hookimpl


def _jsonl(run, record: dict) -> None:
    with open(run.run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _writer(run):
    writer = run.state.get("tensorboard")
    if writer is None:
        from torch.utils.tensorboard import SummaryWriter
        writer = run.state["tensorboard"] = SummaryWriter(log_dir=str(run.run_dir / "tensorboard"))
    return writer


@hookimpl
def vlkd_on_step_end(run, step, metrics):
    if not run.is_main:
        return
    _jsonl(run, {"type": "train", "step": step, "time": time.time(), **metrics})
    writer = _writer(run)
    for key, value in metrics.items():
        writer.add_scalar(key if "/" in key else f"train/{key}", value, step)


@hookimpl
def vlkd_on_eval_end(run, step, metrics):
    if not run.is_main:
        return
    _jsonl(run, {"type": "eval", "step": step, "time": time.time(), **metrics})
    writer = _writer(run)
    for key, value in metrics.items():
        writer.add_scalar(f"eval/{key}", value, step)


@hookimpl
def vlkd_on_train_end(run, summary):
    writer = run.state.pop("tensorboard", None)
    if writer is not None:
        writer.close()
