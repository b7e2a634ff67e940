"""The training data of a run: one dataset, or a weighted mixture of several.

    --data shapes --data-option size=32                         one source, plain options
    --data "csv:0.7,imagefolder:0.3" \\
        --data-option csv.path=pairs.csv --data-option imagefolder.root=pets
                                                                a mixture: options per source
"""
from __future__ import annotations

from typing import Any

from .. import api
from ..datasets.mixture import MixtureDataset, Source
from ..errors import UsageError
from .._host.grammar import parse_weighted_names
from .config import TrainConfig


def _build_one(name: str, options: dict[str, Any], strict: bool, flag: str):
    options = dict(options)
    if strict:
        if "strict" not in api.factory_options(api.get_component("datasets", name)):
            raise UsageError(f"--strict: dataset '{name}' reads no image files (it has no 'strict' "
                             "option); drop --strict")
        options["strict"] = True
    return api.build_dataset(name, split="train", **options)


def _options_per_source(cfg: TrainConfig, names: list[str]) -> dict[str, dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {name: {} for name in names}
    # option keys map '-' to '_' (--data-option fashion-mnist.length=...): match names the same way
    by_key = {name.replace("-", "_"): name for name in names}
    for key, value in cfg.data_options.items():
        prefix, dot, option = key.partition(".")
        source = by_key.get(prefix.replace("-", "_"))
        if not dot or source is None:
            raise UsageError(f"--data-option '{key}': with several --data sources, name the source "
                             f"(e.g. {names[0]}.{key.split('.')[-1]}=...; sources: {', '.join(names)})")
        per[source][option] = value
    return per


def build_training_data(cfg: TrainConfig):
    """The dataset ``--data`` names (train split), or the mixture of the sources it lists."""
    items = parse_weighted_names(cfg.data, flag="--data")
    if len(items) == 1 and ":" not in cfg.data:
        return _build_one(cfg.data, cfg.data_options, cfg.strict, "--data")
    names = [name for name, _ in items]
    per = _options_per_source(cfg, names)
    return MixtureDataset([Source(name, weight, _build_one(name, per[name], cfg.strict, "--data"))
                           for name, weight in items])
