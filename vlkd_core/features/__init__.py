"""Teacher feature stores: encode a dataset once with a locked tower (`vlkd features extract`),
train many students from the stored features (`vlkd train --teacher-features DIR`).

    from vlkd_core.features import ExtractConfig, extract, FeatureStore
    from vlkd_core.training.config import TowerConfig
    extract(ExtractConfig(data="webdataset", data_options={"path": "shards/{000..099}.tar"},
                          tower=TowerConfig("text", "hf:sentence-transformers/all-MiniLM-L6-v2"),
                          out="shards/minilm"))

The layout and key scheme: :mod:`vlkd_core.features.layout`.
"""
from .extract import ExtractConfig, extract
from .store import FeatureStore, StoredFeatures

__all__ = ["ExtractConfig", "extract", "FeatureStore", "StoredFeatures"]
