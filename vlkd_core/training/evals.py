"""Running evaluators named on the command line: ``NAME[:key=value,...]``.

Dotted keys nest (``dataset.label_by=colour`` -> ``dataset_options={"label_by": "colour"}``);
``tag=X`` renames the metric prefix (``zeroshot/top1`` -> ``zeroshot-X/top1``) so one evaluator
can run twice.
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


def parse_eval_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """-> (evaluator name, metric tag, options)."""
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
    tag = str(options.pop("tag", ""))
    return name.strip(), tag, options


def build_evaluators(specs: list[str]) -> list[tuple[str, str, Any]]:
    """Build every evaluator up front so a bad name or option fails before training."""
    built = []
    for spec in specs:
        name, tag, options = parse_eval_spec(spec)
        built.append((name, tag, api.build_evaluator(name, **options)))
    return built


def run_evaluators(evaluators: list[tuple[str, str, Any]], model: Any) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, tag, evaluator in evaluators:
        for key, value in evaluator.evaluate(model).items():
            if tag:
                head, sep, tail = key.partition("/")
                key = f"{head}-{tag}/{tail}" if sep else f"{key}-{tag}"
            metrics[key] = float(value)
    return metrics
