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
  for its tests ``LossCall`` (the engine's call of a ``forward``) and ``run_local_processes``
  (a function on N local gloo ranks);
- a backbone family: ``ImageSpec``, ``ImagePreprocess``, ``interpolation_mode``, ``to_rgb``,
  ``eval_transform``, ``DepthFromBlocks`` (``--layer-decay`` and ``--inherit-layers`` from block
  patterns),
  ``PromptContext`` and ``CTX_INIT_STD`` (CoOp prompts), ``load_state_dict_file``,
  ``pretrained_flag`` (the flag a message about the weights names: ``--image-pretrained``, ...),
  ``hub_offline_when_unreachable``, ``hub_reachable``, the freeze helpers ``lock`` (the engine's
  one way to lock a tower), ``apply_freeze`` and ``keep_frozen_in_eval``,
  ``shared_build`` (one model built once for both towers of a run), and the optional abilities
  a tower may have, one Protocol each (``HasImageSpec``, ``LocksItself``, ``GradCheckpointing``,
  ``LayerDepth``, ``NamesBlocks``, ``TextContext``, ``TrimsPadding``, ``ReportsLogitScale``,
  ``TakesPrompts``, ``ExportsAs``);
- a dataset: ``EpochAware``; ``captions_of`` and ``sample_key`` (the caption and key rules);
- an evaluator: ``Evaluator``, ``encode_dataset``, ``encode_texts``, ``progress_bar``;
- an export format: ``ExportFormat`` (what its factory returns), ``Format``, ``LoadedModel``
  (what it writes), ``export_part`` (what a tower offers the format, the ``ExportsAs``
  ability), the head helpers ``as_linear``, ``has_bias``, ``head_layers``, and
  ``parse_backbone_spec`` (a run's ``family:model`` specs);
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
    "notice": "._runtime.notices",
    # lifecycle hooks (callbacks)
    "RunContext": "._host.run_context", "StepMetrics": "._host.run_context",
    # losses
    "LossNeeds": ".contracts", "EpochScheduled": ".contracts", "AfterOptimizerStep": ".contracts",
    "LossInputs": "._model.loss_inputs",
    "LossCall": "._model.loss_inputs",
    "all_gather_with_grad": "._runtime.distributed", "all_gather_no_grad": "._runtime.distributed",
    "all_reduce_sum": "._runtime.distributed", "rank": "._runtime.distributed", "world_size": "._runtime.distributed",
    "is_distributed": "._runtime.distributed",
    "run_local_processes": "._runtime.distributed",
    # backbones
    "Backbone": ".contracts", "ImageSpec": "._model.images", "ImagePreprocess": "._model.images",
    "interpolation_mode": "._model.images", "to_rgb": "._model.images", "DepthFromBlocks": "._model.depth",
    "eval_transform": "._model.images",
    "PromptContext": "._model.prompt_context", "load_state_dict_file": "._runfiles.weights",
    "pretrained_flag": "._model.pretrained_flag",
    "CTX_INIT_STD": "._model.prompt_context",
    "hub_offline_when_unreachable": "._runtime.hub",
    "hub_reachable": "._runtime.hub",
    "HasImageSpec": "._model.abilities", "LocksItself": "._model.abilities", "GradCheckpointing": "._model.abilities",
    "LayerDepth": "._model.abilities", "NamesBlocks": "._model.abilities", "TextContext": "._model.abilities",
    "TrimsPadding": "._model.abilities", "ReportsLogitScale": "._model.abilities", "TakesPrompts": "._model.abilities",
    "ExportsAs": "._model.abilities", "shared_build": "._model.sharing",
    "lock": "._model.freeze", "apply_freeze": "._model.freeze", "keep_frozen_in_eval": "._model.freeze",
    # datasets and evaluators
    "EpochAware": ".contracts", "captions_of": ".datasets.captions", "sample_key": ".datasets.keys",
    "Evaluator": ".contracts", "encode_dataset": ".evaluation.features", "encode_texts": ".evaluation.features",
    "progress_bar": ".evaluation.features",
    # export formats
    "ExportFormat": ".exports.registry", "Format": ".exports.registry", "export_part": ".exports.registry",
    "LoadedModel": "._model.loaded_model", "as_linear": ".exports.heads", "has_bias": ".exports.heads",
    "head_layers": ".exports.heads",
    "parse_backbone_spec": "._host.grammar",
    # recipes
    "Recipe": ".training.recipes",
}

__all__ = sorted(["hookimpl", "Register", *_EXPORTS])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"vlkd_core.sdk has no {name!r}; the SDK is {', '.join(__all__)}")
    return getattr(importlib.import_module(_EXPORTS[name], "vlkd_core"), name)
