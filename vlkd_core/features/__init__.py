"""Teacher feature stores: encode a dataset once with a locked tower (`vlkd features extract`),
train many students from the stored features (`vlkd train --teacher-features DIR`).

    from vlkd_core.features import ExtractConfig, extract, FeatureStore
    from vlkd_core.training.config import TowerConfig
    extract(ExtractConfig(data="webdataset", data_options={"path": "shards/{000..099}.tar"},
                          tower=TowerConfig("text", "hf:sentence-transformers/all-MiniLM-L6-v2"),
                          out="shards/minilm"))

The layout and key scheme: :mod:`vlkd_core.features.layout`.
"""
from .extract_config import ExtractConfig

__all__ = ["ExtractConfig", "extract", "FeatureStore", "StoredFeatures"]

# imported on first use: `vlkd features extract --nproc-per-node N` checks its ExtractConfig in a
# launcher that never needs torch
_LAZY = {"extract": ".extraction", "FeatureStore": ".store", "StoredFeatures": ".store"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
