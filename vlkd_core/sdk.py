"""The plugin SDK: everything a third-party plugin uses, in one place, stable across minor versions.

    from vlkd_core.sdk import hookimpl, LossNeeds, LossInputs, UsageError, all_gather_with_grad

A plugin's ``__init__`` (its registration hooks) imports ``hookimpl`` from here and stays cheap:
every other name is loaded on first use (most of them import torch). Anything in ``vlkd_core``
that is not named here is the engine's own and may change; ``vlkd_core.testing`` is the test kit
(``check_loss``, ``check_backbone``, ..., ``loss_inputs``).

What is here, by what a plugin writes:

- every plugin: ``hookimpl``, ``Register`` (the registration callback), ``RunContext`` (what
  lifecycle hooks receive), the errors (``UsageError``, ``DataError``, ``VlkdError``) and
  ``notice`` (a one-line message to the user);
- a loss: ``LossNeeds``, ``LossInputs`` (the fields a ``forward`` may name), ``EpochScheduled``
  and ``AfterOptimizerStep`` (optional methods), the cross-rank helpers (``all_gather_with_grad``,
  ``all_gather_no_grad``, ``all_reduce_sum``, ``rank``, ``world_size``, ``is_distributed``);
- a backbone family: ``ImageSpec``, ``ImagePreprocess``, ``interpolation_mode``, ``to_rgb``,
  ``DepthFromBlocks`` (``--layer-decay`` and ``--inherit-layers`` from block patterns),
  ``PromptContext`` (CoOp prompts), ``load_state_dict_file``, ``hub_offline_when_unreachable``,
  ``shared_build`` (one model built once for both towers of a run), and the optional abilities a tower may have (:mod:`vlkd_core.abilities`);
- a dataset: ``EpochAware``; ``captions_of`` and ``sample_key`` (the caption and key rules);
- an evaluator: ``Evaluator``, ``encode_dataset``, ``encode_texts``, ``progress_bar``;
- an export format: ``ExportFormat`` (what its factory returns), ``Format``, ``LoadedModel``
  (what it writes), ``export_part`` (what a tower offers the format, the ``ExportsAs``
  ability), and the head helpers ``as_linear``, ``has_bias``, ``head_layers``;
- a recipe: ``Recipe``;
- an optimizer or schedule: a factory registered with ``register(name, factory)`` (its options
  come from its signature, like every component); a callback: the lifecycle hooks with
  ``RunContext`` and ``StepMetrics``.
"""
from __future__ import annotations

import importlib
from typing import Any

from .hookspecs import Register, hookimpl  # cheap: what every plugin's __init__ needs

_EXPORTS = {
    # errors and messages
    "VlkdError": ".errors", "UsageError": ".errors", "DataError": ".errors", "PluginError": ".errors",
    "notice": ".notices",
    # lifecycle hooks (callbacks)
    "RunContext": ".run_context", "StepMetrics": ".run_context",
    # losses
    "LossNeeds": ".contracts", "EpochScheduled": ".contracts", "AfterOptimizerStep": ".contracts",
    "LossInputs": ".loss_inputs",
    "all_gather_with_grad": ".distributed", "all_gather_no_grad": ".distributed",
    "all_reduce_sum": ".distributed", "rank": ".distributed", "world_size": ".distributed",
    "is_distributed": ".distributed",
    # backbones
    "Backbone": ".contracts", "ImageSpec": ".images", "ImagePreprocess": ".images",
    "interpolation_mode": ".images", "to_rgb": ".images", "DepthFromBlocks": ".depth",
    "PromptContext": ".prompt_context", "load_state_dict_file": ".weights",
    "hub_offline_when_unreachable": ".hub",
    "HasImageSpec": ".abilities", "LocksItself": ".abilities", "GradCheckpointing": ".abilities",
    "LayerDepth": ".abilities", "NamesBlocks": ".abilities", "TextContext": ".abilities",
    "TrimsPadding": ".abilities", "ReportsLogitScale": ".abilities", "TakesPrompts": ".abilities",
    "ExportsAs": ".abilities", "shared_build": ".sharing",
    # datasets and evaluators
    "EpochAware": ".contracts", "captions_of": ".datasets.captions", "sample_key": ".datasets.keys",
    "Evaluator": ".contracts", "encode_dataset": ".evaluation.features", "encode_texts": ".evaluation.features",
    "progress_bar": ".evaluation.features",
    # export formats
    "ExportFormat": ".exports.registry", "Format": ".exports.registry", "export_part": ".exports.registry",
    "LoadedModel": ".loaded_model", "as_linear": ".exports.heads", "has_bias": ".exports.heads",
    "head_layers": ".exports.heads",
    # recipes
    "Recipe": ".training.recipes",
}

__all__ = sorted(["hookimpl", "Register", *_EXPORTS])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"vlkd_core.sdk has no {name!r}; the SDK is {', '.join(__all__)}")
    return getattr(importlib.import_module(_EXPORTS[name], "vlkd_core"), name)
