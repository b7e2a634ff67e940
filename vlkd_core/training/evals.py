"""Running evaluators named on the command line: ``NAME[:key=value,...]``.

Dotted keys nest (``dataset.label_by=colour`` -> ``dataset_options={"label_by": "colour"}``);
``prefix=X`` renames the metrics (``X/top1``) so one evaluator can run twice.
"""
from __future__ import annotations

import json
from typing import Any

from .. import api
from ..errors import UsageError


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_eval_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """-> (evaluator name, options)."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"--eval '{spec}': '{part}' must look like key=value")
        if "." in key:
            outer, inner = key.split(".", 1)
            options.setdefault(f"{outer}_options", {})[inner] = _value(value)
        else:
            options[key] = _value(value)
    return name.strip(), options


def build_evaluators(specs: list[str]) -> list[tuple[str, Any]]:
    """Build every evaluator up front so a bad name or option fails before training."""
    built = []
    for spec in specs:
        name, options = parse_eval_spec(spec)
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
