"""Running evaluators named on the command line: ``NAME[:key=value,...]``.

Dotted keys nest (``dataset.label_by=colour`` -> ``dataset_options={"label_by": "colour"}``);
``prefix=X`` renames the metrics (``X/top1``) so one evaluator can run twice. Values are
JSON when they parse as JSON, so lists keep their commas: ``seeds=[0,1,2]``.
"""
from __future__ import annotations

import json
from typing import Any

from .. import api
from ..errors import UnknownComponentError, UsageError


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_eval_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """-> (evaluator name, options)."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in _split_top_level(rest))):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"--eval '{spec}': '{part}' must look like key=value")
        if "." in key:
            outer, inner = key.split(".", 1)
            options.setdefault(f"{outer}_options", {})[inner] = _value(value)
        else:
            options[key] = _value(value)
    return name.strip(), options


def suggested_evals(data: str) -> list[str]:
    """The ``evals`` a dataset plugin registered for runs that train on it (none if it did not)."""
    try:
        component = api.get_component("datasets", data)
    except UnknownComponentError:  # fails later, where the data is built, with "did you mean"
        return []
    return [str(spec) for spec in component.metadata.get("evals", [])]


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
