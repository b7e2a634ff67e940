"""Builtin logger: TensorBoard event files in RUN/tensorboard, written on logging steps
(``vlkd_on_log``) and after evaluations during training. Main rank only. A plugin of its
own so a run can go without it (``--disable-plugin builtin-tensorboard``): importing
tensorboard costs ~12 MB of heap and some start-up time."""
from __future__ import annotations

from vlkd_core.hookspecs import hookimpl


def _writer(run):
    writer = run.state.get("tensorboard")
    if writer is None:
        from torch.utils.tensorboard import SummaryWriter
        # a resumed run: tensorboard drops the events logged after the checkpoint (purge_step)
        purge = run.state.get("tensorboard_resumed_at")
        writer = run.state["tensorboard"] = SummaryWriter(
            log_dir=str(run.run_dir / "tensorboard"), purge_step=None if purge is None else purge + 1)
    return writer


@hookimpl
def vlkd_on_train_start(run):
    if run.is_main and run.step:
        run.state["tensorboard_resumed_at"] = run.step


def _add(run, step: int, tags: dict) -> None:
    if run.is_main:
        writer = _writer(run)
        for tag, value in tags.items():
            writer.add_scalar(tag, value, step)


@hookimpl
def vlkd_on_log(run, step, metrics):
    _add(run, step, {key if "/" in key else f"train/{key}": value for key, value in metrics.items()})


@hookimpl
def vlkd_on_eval_end(run, step, metrics):
    if run.command == "train":  # `vlkd eval` of a run must not write into its event files
        _add(run, step, {f"eval/{key}": value for key, value in metrics.items()})


@hookimpl
def vlkd_on_train_end(run, summary):
    writer = run.state.pop("tensorboard", None)
    if writer is not None:
        writer.close()
