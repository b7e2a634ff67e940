"""The 20 ELEVATER image-classification datasets: their metric and shipped prompts.

Metrics follow CLIP's evaluation protocol as adopted by ELEVATER: mean per-class accuracy for
FGVC-Aircraft, Oxford-IIIT Pets, Caltech-101 and Oxford Flowers-102, 11-point mAP for VOC-2007
(multi-label), ROC AUC for Hateful Memes, top-1 accuracy elsewhere.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

ACCURACY, MEAN_PER_CLASS, MAP_11, ROC_AUC = "accuracy", "mean-per-class", "11point_mAP", "roc_auc"

METRICS = {
    "caltech-101": MEAN_PER_CLASS, "cifar-10": ACCURACY, "cifar-100": ACCURACY,
    "country211": ACCURACY, "dtd": ACCURACY, "eurosat_clip": ACCURACY, "fer-2013": ACCURACY,
    "fgvc-aircraft-2013b-variants102": MEAN_PER_CLASS, "food-101": ACCURACY, "gtsrb": ACCURACY,
    "hateful-memes": ROC_AUC, "kitti-distance": ACCURACY, "mnist": ACCURACY,
    "oxford-flower-102": MEAN_PER_CLASS, "oxford-iiit-pets": MEAN_PER_CLASS,
    "patch-camelyon": ACCURACY, "rendered-sst2": ACCURACY, "resisc45_clip": ACCURACY,
    "stanford-cars": ACCURACY, "voc-2007-classification": MAP_11,
}
MULTILABEL = {"voc-2007-classification"}
ELEVATER_DATASETS = tuple(METRICS)


def metric_of(name: str) -> str:
    """The leaderboard metric of a dataset (top-1 accuracy for datasets outside ELEVATER)."""
    return METRICS.get(name, ACCURACY)


@lru_cache(maxsize=1)
def _prompts() -> dict:
    text = (resources.files("vlkd_elevater") / "data" / "prompts.json").read_text(encoding="utf-8")
    return json.loads(text)["datasets"]


def shipped_prompts(name: str) -> dict | None:
    """``{"classnames": [...], "templates": [...]}`` from the ELEVATER toolkit, or None.
    A class name may be a list of synonyms (FER-2013), all of which enter the ensemble."""
    return _prompts().get(name)
