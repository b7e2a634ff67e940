"""Evaluation: pure metrics (:mod:`.metrics`) and the builtin evaluators.

Registered evaluators and their stable metric names (``<prefix>/<metric>``; the prefix defaults
to the name below and can be changed with ``prefix=``):

=================  ===========================================================================
zeroshot           zeroshot/top1, zeroshot/top5, zeroshot/mean_per_class_recall
retrieval          retrieval/image_to_text_R@{1,5,10}, retrieval/text_to_image_R@{1,5,10},
                   retrieval/mean_recall
linear-probe       linear_probe/top1, linear_probe/top5, linear_probe/mean_per_class_recall,
                   linear_probe/val_top1, linear_probe/best_C
knn                knn/top1, knn/top5, knn/mean_per_class_recall
clustering         clustering/nmi, clustering/ami, clustering/ari
sts                sts/spearman, sts/pearson
word-similarity    word_similarity/wordsim353, word_similarity/simlex999, word_similarity/mean
=================  ===========================================================================

During training with ``--eval-wise-ft A`` each metric is reported a second time for the WiSE-FT
weights as ``wise-ft/<prefix>/<metric>``. Retrieval counts every caption of an image (a
sample's ``captions`` list) as its positive, CLIP_benchmark's protocol.

Every evaluator has ``evaluate(model, dataset=None, **kw) -> dict[str, float]`` and, after a
call, an ``artifacts`` dict (per-class tables, predictions, retrieval examples; see each
module). This package imports nothing heavy until an evaluator module is imported.
"""
EVALUATORS = {
    "zeroshot": "vlkd_core.evaluation.zeroshot:ZeroShotEvaluator",
    "retrieval": "vlkd_core.evaluation.retrieval:RetrievalEvaluator",
    "linear-probe": "vlkd_core.evaluation.linear_probe:LinearProbeEvaluator",
    "knn": "vlkd_core.evaluation.knn:KNNEvaluator",
    "clustering": "vlkd_core.evaluation.clustering:ClusteringEvaluator",
    "sts": "vlkd_core.evaluation.similarity:STSEvaluator",
    "word-similarity": "vlkd_core.evaluation.similarity:WordSimilarityEvaluator",
}
