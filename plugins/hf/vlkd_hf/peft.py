"""Parameter-efficient tuning through the ``adapters`` library: only adapter weights train."""
from __future__ import annotations

from torch import nn

from vlkd_core.errors import UsageError

ADAPTER_NAME = "vlkd"
# option value -> adapters config name
ADAPTERS = {"lora": "lora", "bottleneck": "seq_bn", "seq_bn": "seq_bn",
            "prefix_tuning": "prefix_tuning", "ia3": "ia3", "compacter": "compacter",
            "mam": "mam", "unipelt": "unipelt"}


def add_adapter(model: nn.Module, adapter: str, config: dict | None = None) -> nn.Module:
    """Add and activate one adapter on a transformers model and freeze everything else.
    ``config`` overrides fields of the adapters config (e.g. ``{"r": 16}`` for LoRA,
    ``{"reduction_factor": 8}`` for bottleneck / compacter)."""
    key = adapter.lower().replace("-", "_")
    if key not in ADAPTERS:
        raise UsageError(f"adapter '{adapter}' is not one of {', '.join(sorted(ADAPTERS))}")
    try:
        import adapters
    except ImportError:
        raise UsageError("adapter= needs the `adapters` library: pip install adapters") from None
    try:
        adapters.init(model)
        model.add_adapter(ADAPTER_NAME, config=adapters.AdapterConfig.load(ADAPTERS[key], **(config or {})))
    except (ValueError, AttributeError, TypeError, AssertionError) as exc:
        raise UsageError(f"adapter '{adapter}' cannot be added to {type(model).__name__}: {exc}") from None
    model.train_adapter(ADAPTER_NAME)  # freezes the base model, activates the adapter
    return model
