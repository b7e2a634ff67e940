"""A rich progress bar with ETA, loss and throughput (main rank only)."""
from __future__ import annotations

from typing import Any

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


class TrainProgress:
    def __init__(self, total: int, enabled: bool = True, console: Any = None):
        self.enabled = enabled
        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} samples/s"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=console, disable=not enabled, transient=False)
        self.task = self.progress.add_task("train", total=total, loss="-", speed="-")

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def advance_to(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def update(self, step: int, metrics: dict[str, float]) -> None:
        """``metrics``: the last logged step's (empty before the first log)."""
        if "loss" not in metrics:
            self.progress.update(self.task, completed=step)
            return
        self.progress.update(self.task, completed=step, loss=f"{metrics['loss']:.4f}",
                             speed=f"{metrics['samples_per_s']:.0f}")
