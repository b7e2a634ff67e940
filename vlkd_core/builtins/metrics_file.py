"""Builtin logger: every logged training step (``vlkd_on_log``, every --log-every) and every
evaluation during training as one JSON line in RUN/metrics.jsonl (what `vlkd report`, the
benchmarks and resume read). Main rank only; `vlkd eval` writes its own eval.json instead."""
from __future__ import annotations

import json
import time

from vlkd_core.hookspecs import hookimpl
from vlkd_core._runfiles.runfiles import append_text, read_bytes, write_atomic


def _append(run, record: dict) -> None:
    append_text(run.run_dir / "metrics.jsonl", json.dumps(record) + "\n")  # never through a link


def truncate_metrics(path, step: int) -> None:
    """Keep the records of ``path`` (metrics.jsonl) up to ``step``: those logged after the
    checkpoint a run resumes from are logged again, and curves must not double back.
    Rewritten atomically; a torn last line (a killed run) is dropped too."""
    if not path.exists():
        return
    kept = []
    text = read_bytes(path).decode("utf-8", "replace")  # a damaged line is dropped below
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step", 0), (int, float)) and record.get("step", 0) <= step:
            kept.append(line + "\n")
    write_atomic(path, "".join(kept), durable=False)


@hookimpl
def vlkd_on_train_start(run):
    if run.is_main and run.step:
        truncate_metrics(run.run_dir / "metrics.jsonl", run.step)


@hookimpl
def vlkd_on_log(run, step, metrics):
    if run.is_main:
        _append(run, {"type": "train", "step": step, "time": time.time(), **metrics})


@hookimpl
def vlkd_on_eval_end(run, step, metrics):
    if run.is_main and run.command == "train":
        _append(run, {"type": "eval", "step": step, "time": time.time(), **metrics})
