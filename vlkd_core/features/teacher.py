"""The engine's side of `vlkd train --teacher-features DIR`: the stand-in teacher tower at
compose time, the store as the teacher's feature source, and the check that the store covers
the training data, all before the first step."""
from __future__ import annotations

import json
from typing import Any, Callable

from torch import nn

from ..errors import UsageError
from .fingerprint import changed, data_fingerprint
from .sources import entries_of, units_of
from .store import FeatureStore, StoredFeatures
from .tower import StoredTower, image_spec_of


def stored_tower(cfg: Any, side: str, teacher: str | None, build: Callable[[], nn.Module]) -> nn.Module | None:
    """The teacher's stand-in when ``cfg.teacher_features`` is set and ``side`` is the teacher;
    None otherwise (build the tower as usual)."""
    if not getattr(cfg, "teacher_features", None) or reinforced_store(cfg) is not None:
        return None
    if teacher is None:
        raise UsageError("--teacher-features holds a teacher's features; pass --teacher text or --teacher image")
    if side != teacher:
        return None
    store = FeatureStore(cfg.teacher_features)
    store.check_model(cfg.tower(side))
    try:
        spec = image_spec_of(store.manifest["preprocessing"].get("image_spec")) if side == "image" else None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise store.error("manifest.json: preprocessing.image_spec is not a size, mean, std and interpolation") from None
    return StoredTower(side, store.width, build, spec)


def reinforced_store(cfg: Any) -> FeatureStore | None:
    """``--teacher-features`` when it is a reinforced store (a teacher model's views), else None."""
    from .reinforce import is_reinforced
    if not getattr(cfg, "teacher_features", None):
        return None
    store = FeatureStore(cfg.teacher_features)
    return store if is_reinforced(store) else None


def reinforced_teacher(cfg: Any, teacher: Any) -> tuple[Any, Any] | None:
    """(the loader's recorded crops, the teacher's stored features) of a reinforced
    ``--teacher-features``, checked against the run (its teacher, seed, preset and K); None
    when there is none."""
    from . import reinforce
    store = reinforced_store(cfg)
    if store is None:
        return None
    if teacher is None:
        raise store.error("holds a teacher model's features: add --teacher-model "
                          f"{store.manifest['model'].get('spec')}")
    reinforce.check_run(store, cfg, teacher)
    store.verify()
    return reinforce.RecordedCrops(store), reinforce.ReinforcedTeacher(store)


def adopt_views(cfg: Any) -> str | None:
    """A run from a reinforced store without --augmentations trains on the store's K views; the
    line that says so."""
    store = reinforced_store(cfg)
    if store is None or cfg.augmentations is not None:
        return None
    cfg.augmentations = int(store.manifest["augmentations"])
    return f"--augmentations {cfg.augmentations}: the views of the reinforced store '{store.folder}'"


def teacher_source(cfg: Any, side: str) -> StoredFeatures:
    """The verified store (every shard's sha256, dtype and width) as the teacher's features."""
    store = FeatureStore(cfg.teacher_features)
    store.verify()
    return StoredFeatures(store, side)


def _same_data(cfg: Any, recorded: dict[str, Any]) -> bool:
    ours = {"name": cfg.data, "options": cfg.data_options, "split": "train"}
    return json.dumps(ours, sort_keys=True, default=str) == json.dumps(recorded, sort_keys=True, default=str)


def check_covers(source: Any, cfg: Any, dataset: Any) -> None:
    """Every training sample's entries are in the store. A complete store extracted from the very
    data the run trains on covers it by construction; other data is read once to check."""
    from .reinforce import ReinforcedTeacher, covered
    if isinstance(source, ReinforcedTeacher):
        store, lacks = source.store, lambda key, item: covered(source.store, key, item)
    elif isinstance(source, StoredFeatures):
        store, lacks = source.store, lambda key, item: store.missing(entries_of(key, item, source.side))
    else:
        return
    if _same_data(cfg, store.manifest.get("data", {})):
        recorded = store.manifest.get("data_fingerprint")
        key = None if recorded is None else changed(recorded, data_fingerprint(cfg.data_options))
        if key is not None:  # a store from before fingerprints has none to compare
            raise store.error(f"the files of --data-option {key} changed since the store was extracted "
                              "(their content fingerprint differs); extract the store again into a new --out")
        return
    for unit in units_of(dataset, 4096):
        for key, item in unit.items():
            missing = lacks(key, item)
            if missing is not None:
                raise store.error(f"no feature for key '{missing}' (sample '{key}' of --data {cfg.data}); "
                                  "extract the store from the training data")
