"""Running evaluators named on the command line: ``NAME[:key=value,...]``.

Dotted keys nest (``dataset.label_by=colour`` -> ``dataset_options={"label_by": "colour"}``);
``prefix=X`` renames the metrics (``X/top1``) so one evaluator can run twice. Values are
JSON when they parse as JSON, so lists keep their commas: ``seeds=[0,1,2]``.
"""
from __future__ import annotations

from typing import Any

from .. import api
from ..errors import UnknownComponentError, UsageError
from .._host.grammar import parse_eval_spec, parse_weighted_names


def suggested_evals(data: str) -> list[str]:
    """The ``evals`` the dataset plugins of ``--data`` registered for runs that train on their
    data (for a mixture, every source's, once each; none if they registered none)."""
    specs: list[str] = []
    for name, _ in parse_weighted_names(data, flag="--data"):
        try:
            component = api.get_component("datasets", name)
        except UnknownComponentError:  # fails later, where the data is built, with "did you mean"
            continue
        specs += [str(spec) for spec in component.metadata.get("evals", []) if str(spec) not in specs]
    return specs


def build_evaluators(specs: list[str]) -> list[tuple[str, Any]]:
    """Build every evaluator up front so a bad name or option fails before training."""
    built = []
    for spec in specs:
        name, options = parse_eval_spec(spec)
        dataset, dataset_options = options.get("dataset"), options.get("dataset_options")
        if isinstance(dataset, str) and isinstance(dataset_options, dict):
            # the dataset is built when the evaluator runs (maybe after training): check its
            # options' names and types now
            api.check_options("datasets", dataset, dataset_options, fixed=("split",))
        built.append((name, api.build_evaluator(name, **options)))
    return built


def run_evaluators(evaluators: list[tuple[str, Any]], model: Any) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, evaluator in evaluators:
        was_training = model.training
        model.eval()
        for key, value in evaluator.evaluate(model).items():
            if key in metrics:
                raise UsageError(f"--eval: two evaluators report '{key}'; give one a prefix=NAME option")
            metrics[key] = float(value)
        model.train(was_training)
    return metrics


def eval_ended(model: Any, metrics: dict[str, float], run_dir: Any, config: Any = None,
               checkpoint: Any = None) -> None:
    """Fire ``vlkd_on_eval_end`` for ``vlkd eval`` (``run.command == "eval"``): ``step`` is the
    evaluated checkpoint's (0 for untrained towers); ``config`` the run's saved one, if any."""
    from pathlib import Path

    from .._host.plugins import get_plugin_manager
    from .._host.run_context import RunContext
    step = epoch = 0
    if checkpoint is not None:
        from .checkpoint import read_meta
        meta = read_meta(checkpoint)
        step, epoch = int(meta.get("step", 0)), int(meta.get("epoch", 0))
    run = RunContext(config, Path(run_dir), model, command="eval", position=lambda: (step, epoch))
    get_plugin_manager().hook.vlkd_on_eval_end(run=run, step=step, metrics=dict(metrics))
