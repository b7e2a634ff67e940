"""Builtin logger: every train and eval record as one JSON line in RUN/metrics.jsonl (what
`vlkd report`, the benchmarks and resume read). Main rank only."""
from __future__ import annotations

import json
import os
import time

from vlkd_core.hookspecs import hookimpl


def _append(run, record: dict) -> None:
    with open(run.run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


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
    if run.is_main and run.step:
        truncate_metrics(run.run_dir / "metrics.jsonl", run.step)


@hookimpl
def vlkd_on_step_end(run, step, metrics):
    if run.is_main:
        _append(run, {"type": "train", "step": step, "time": time.time(), **metrics})


@hookimpl
def vlkd_on_eval_end(run, step, metrics):
    if run.is_main:
        _append(run, {"type": "eval", "step": step, "time": time.time(), **metrics})
