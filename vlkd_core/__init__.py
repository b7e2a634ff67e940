"""vlkd core: hook specs, plugin manager, registries and the Python API.

Importing this package is cheap: torch and every heavy library are imported only when a
component is built.
"""
from .api import (build_backbone, build_dataset, build_evaluator, build_head, build_loss,
                  factory_options, get_component, list_components)
from .contracts import LossNeeds, loss_logs, loss_needs, loss_value
from .errors import (ComponentCollisionError, DataError, PluginError, UnknownComponentError,
                     UsageError, VlkdError)
from .hookspecs import hookimpl, hookspec
from ._host.plugins import get_plugin_manager, reset_plugin_manager
from ._host.run_context import RunContext, StepMetrics
from ._host.grammar import parse_backbone_spec, parse_weighted_names

__version__ = "0.1.0"

# loaded on first use (they import torch): vlkd.load(RUN), vlkd.export(RUN, FORMAT, OUT)
_LAZY = {"load": "._model.loader", "LoadedModel": "._model.loaded_model", "export": ".exports"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_LAZY[name], __name__), name)


__all__ = [
    "build_backbone", "build_dataset", "build_evaluator", "build_head", "build_loss",
    "factory_options", "get_component", "list_components", "LossNeeds", "loss_logs",
    "loss_needs", "loss_value", "ComponentCollisionError", "DataError", "PluginError",
    "UnknownComponentError", "UsageError", "VlkdError", "hookimpl", "hookspec",
    "get_plugin_manager", "reset_plugin_manager", "RunContext", "StepMetrics", "parse_backbone_spec",
    "parse_weighted_names",
    "load", "LoadedModel", "export",
]
