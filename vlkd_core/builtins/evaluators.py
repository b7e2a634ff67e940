"""Builtin evaluators (lazy import strings: listing them never imports torch or sklearn)."""
from vlkd_core.hookspecs import hookimpl

DESCRIPTIONS = {
    "zeroshot": "zero-shot classification with prompt-template ensembles (top-1/5, mean per-class recall)",
    "retrieval": "image<->text retrieval R@1/5/10 both ways, several captions per image",
    "linear-probe": "logistic regression on frozen features; C chosen on a validation split; few-shot",
    "knn": "weighted k-NN on frozen image features (InstDisc/DINO votes)",
    "clustering": "k-means on image features scored by NMI / AMI / ARI",
    "sts": "sentence similarity: Spearman between cosine and human scores (TSV)",
    "word-similarity": "WordSim353 / SimLex-999 Spearman with the text tower",
}


@hookimpl
def vlkd_register_evaluators(register):
    from vlkd_core.evaluation import EVALUATORS
    for name, factory in EVALUATORS.items():
        register(name, factory, description=DESCRIPTIONS[name])
