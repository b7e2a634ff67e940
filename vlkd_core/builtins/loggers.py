"""Builtin loggers over the lifecycle hooks: a JSONL metrics file and tensorboard event files.
Both write on the main rank only, into the run directory."""
from __future__ import annotations

import json
import os
import time

from vlkd_core.hookspecs import hookimpl


def _jsonl(run, record: dict) -> None:
    with open(run.run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _writer(run):
    writer = run.state.get("tensorboard")
    if writer is None:
        from torch.utils.tensorboard import SummaryWriter
        # a resumed run: tensorboard drops the events logged after the checkpoint (purge_step)
        purge = run.state.get("resumed_at")
        writer = run.state["tensorboard"] = SummaryWriter(
            log_dir=str(run.run_dir / "tensorboard"), purge_step=None if purge is None else purge + 1)
    return writer


def truncate_metrics(path, step: int) -> None:
    """Keep the records of ``path`` (metrics.jsonl) up to ``step``: those logged after the
    checkpoint a run resumes from are logged again, and curves must not double back.
    Rewritten atomically; a torn last line (a killed run) is dropped too."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, path)


@hookimpl
def vlkd_on_train_start(run):
    if not run.is_main or not run.step:
        return
    run.state["resumed_at"] = run.step
    truncate_metrics(run.run_dir / "metrics.jsonl", run.step)


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
