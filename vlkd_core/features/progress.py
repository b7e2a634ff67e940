"""The extraction's progress bar (main rank): samples, samples/s and ETA."""
from __future__ import annotations

from typing import Any

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


class ExtractProgress:
    """Counts this rank's samples; the total is known for map-style sets and estimated from the
    shards read so far for streaming ones (the bar then fills per shard)."""

    def __init__(self, total: int | None, units: int, enabled: bool, console: Any = None):
        self.units, self.done_units, self.samples = units, 0, 0
        self.known = total
        self.progress = Progress(TextColumn("[bold]features"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[speed]} samples/s"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=console,
                                 disable=not enabled, transient=False)
        self.task = self.progress.add_task("features", total=total, speed="-")

    def __enter__(self) -> "ExtractProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def advance(self, samples: int) -> None:
        self.samples += samples
        speed = self.progress.tasks[0].speed
        self.progress.update(self.task, advance=samples, speed=f"{speed:.0f}" if speed else "-")

    def unit_done(self) -> None:
        self.done_units += 1
        if self.known is None and self.done_units:  # estimate: samples per shard so far
            estimate = round(self.samples / self.done_units * self.units)
            self.progress.update(self.task, total=max(estimate, self.samples))
