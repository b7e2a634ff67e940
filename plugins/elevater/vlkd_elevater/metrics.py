"""Each dataset's leaderboard metric, computed with ``vision-evaluation`` (the library the
ELEVATER toolkit uses) and sklearn's ROC AUC for Hateful Memes."""
from __future__ import annotations

import numpy as np

from .catalog import ACCURACY, MAP_11, MEAN_PER_CLASS, ROC_AUC


def dataset_score(metric: str, probs: np.ndarray, targets: np.ndarray) -> float:
    """``probs``: ``[N, C]`` class probabilities; ``targets``: ``[N]`` ids or ``[N, C]`` multi-hot."""
    import vision_evaluation.evaluators as ve
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    if metric == ACCURACY:
        ev = ve.TopKAccuracyEvaluator(1)
        ev.add_predictions(predictions=probs, targets=targets)
        return float(ev.get_report()["accuracy_top1"])
    if metric == MEAN_PER_CLASS:
        ev = ve.BalancedAccuracyScoreEvaluator()
        ev.add_predictions(predictions=probs, targets=targets)
        return float(ev.get_report()["balanced_accuracy"])
    if metric == MAP_11:
        ev = ve.MeanAveragePrecisionNPointsEvaluator(11)
        ev.add_predictions(predictions=probs, targets=targets)
        return float(ev.get_report()["mAP_11_points"])
    if metric == ROC_AUC:
        from sklearn.metrics import roc_auc_score
        if len(np.unique(targets)) < 2:
            return float("nan")
        return float(roc_auc_score(targets, probs[:, 1]))
    raise ValueError(f"unknown ELEVATER metric '{metric}'")
