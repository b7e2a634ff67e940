"""What lifecycle hooks receive: ``run``, a small frozen view of one run (:class:`RunContext`),
and a step's ``metrics`` (:class:`StepMetrics`, read lazily).

    @hookimpl
    def vlkd_on_train_start(run):
        run.state["ema"] = Ema(run.model)        # per-run objects live in run.state

    @hookimpl
    def vlkd_on_step_end(run, step, metrics):   # after every optimizer step
        run.state["ema"].update(run.model)

The fields cannot be reassigned (``run.step = 3`` raises), ``step`` and ``epoch`` read the
run's position when asked, and ``state`` is the one place a plugin keeps objects across hooks
of the same run (a logger's writer, an EMA copy). Hooks never see the Trainer itself, so its
internals can change without breaking a plugin.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


def _start() -> tuple[int, int]:
    return 0, 0


@dataclass(frozen=True)
class RunContext:
    """One run, as hooks see it.

    config:     the run's ``TrainConfig`` (for ``vlkd eval RUN``, the run's saved config; None
                when ``vlkd eval --image`` scores untrained towers)
    run_dir:    the run folder (``vlkd eval``: the evaluated run's folder, or where eval.json goes)
    model:      the ``DualEncoder`` being trained or evaluated (towers and heads)
    is_main:    True on rank 0 (write files only there)
    rank, world_size: this process's rank and the number of processes (1 without torchrun)
    command:    ``"train"`` or ``"eval"`` (``vlkd eval`` fires only ``vlkd_on_eval_end``)
    state:      a dict for the plugins' per-run objects, fresh for every run
    step, epoch: the optimizer steps done and the current epoch (read-only, always current)
    """

    config: Any
    run_dir: Path
    model: Any
    is_main: bool = True
    rank: int = 0
    world_size: int = 1
    command: str = "train"
    state: dict[str, Any] = field(default_factory=dict)
    position: Callable[[], tuple[int, int]] = field(default=_start, repr=False, compare=False)

    @property
    def step(self) -> int:
        return self.position()[0]

    @property
    def epoch(self) -> int:
        return self.position()[1]


class StepMetrics(Mapping):
    """The scalars of one optimizer step as ``vlkd_on_step_end`` receives them (``loss``, the
    loss's own logs, ``lr``, ``epoch``, ``samples_per_s``).

    Reading a value (``metrics["loss"]``, ``dict(metrics)``) makes it a Python float, which for
    a tensor waits for the device to finish the step: a host sync that only a reader pays for,
    once per value. ``metrics.tensor("loss")`` gives the value as it is (the detached loss
    tensor), without waiting. ``vlkd_on_log`` gets plain floats every ``--log-every`` steps."""

    def __init__(self, values: dict[str, Any]):
        self._values, self._floats = values, {}

    def __getitem__(self, key: str) -> float:
        if key not in self._floats:
            self._floats[key] = float(self._values[key])
        return self._floats[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def tensor(self, key: str) -> Any:
        """The value unconverted: a detached tensor for the loss (no host sync)."""
        return self._values[key]
