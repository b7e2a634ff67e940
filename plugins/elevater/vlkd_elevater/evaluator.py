"""The ``elevater`` evaluator: ELEVATER image classification in three modes.

- ``mode="zeroshot"``: prompt-ensemble classifier (shipped ELEVATER names and templates),
  probabilities = softmax(100 · cosine), n_shot 0.
- ``mode="linear-probe"``: logistic regression on frozen image features. C is chosen on a
  validation split carved from the training images, never on the test set.
- ``mode="finetune"``: a copy of the image tower plus a linear head (initialised from the
  zero-shot text classifier, ``head_init="text"``, or at random) trained end to end with AdamW
  for ``epochs``; the learning rate is picked from ``lrs`` on a validation split carved from the
  training images, then a fresh copy is trained on all of them (see :mod:`.finetune`).

Both trained modes take ``num_shots=k`` (k images per class for each seed in ``seeds``, drawn
by vision-datasets' few-shot sampler as in the toolkit; ELEVATER's protocol is 5 shots, seeds
0, 1, 2) or ``num_shots=None`` (the full training split, n_shot -1).

Metrics: ``elevater/<dataset>/<metric>`` (the dataset's leaderboard metric, averaged over seeds:
accuracy, mean-per-class, 11point_mAP or roc_auc) and ``elevater/average`` over datasets.
Artifacts: ``records`` (the submission records, predictions included), ``scores``
(``{dataset: {"metric", "score", "per_seed", "selection"}}``; ``selection`` holds per seed the
chosen C or learning rate and its validation scores) and ``submission`` (path of
``all_predictions.zip`` when ``output_dir`` is set).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from vlkd_core.errors import DataError, UsageError
from vlkd_core.evaluation.features import encode_dataset, encode_texts
from vlkd_core.evaluation.metrics import DEFAULT_CS, validation_split
from vlkd_core.evaluation.prompts import format_prompt

from .catalog import metric_of
from .finetune import HEAD_INITS, FinetuneSettings, finetune
from .metrics import dataset_score
from .probe import few_shot_subset, probe_probs
from .reader import ElevaterSplit, available_datasets

MODES = ("zeroshot", "linear-probe", "finetune")
TRAINED_MODES = ("linear-probe", "finetune")


def zeroshot_classifier(model: Any, classnames: Sequence[str | list[str]], templates: Sequence[str],
                        show_progress: bool = False) -> torch.Tensor:
    """``[C, D]``: for each class every (synonym × template) prompt is encoded and normalised,
    the class mean is normalised again (synonym lists give FER-2013's ensembles)."""
    groups = [c if isinstance(c, list) else [c] for c in classnames]
    prompts = [format_prompt(t, s) for g in groups for s in g for t in templates]
    feats = torch.nn.functional.normalize(
        encode_texts(model, prompts, description="elevater: prompts", show_progress=show_progress), dim=-1)
    out, start = [], 0
    for g in groups:
        n = len(g) * len(templates)
        out.append(torch.nn.functional.normalize(feats[start:start + n].mean(0), dim=-1))
        start += n
    return torch.stack(out)


class ElevaterEvaluator:
    """Options: ``root`` (data directory), ``dataset_json`` (vision-datasets registry file, e.g.
    the toolkit's vision_datasets.json; optional), ``datasets`` (names; default all found),
    ``mode``, ``num_shots``, ``seeds``, ``val_fraction``; linear probe: ``Cs``, ``max_iter``;
    fine-tune: ``epochs``, ``lrs``, ``weight_decay``, ``head_init``; ``batch_size`` (encoding,
    and fine-tuning), ``output_dir`` (write the submission there), ``model_name``,
    ``max_samples`` (cap per split, for quick checks only: a capped run is not a valid
    submission), ``prefix``, ``progress``."""

    name = "elevater"

    def __init__(self, root: str | None = None, dataset_json: str | None = None,
                 datasets: Sequence[str] | None = None, mode: str = "zeroshot",
                 num_shots: int | None = None, seeds: Sequence[int] | None = None,
                 Cs: Sequence[float] = DEFAULT_CS, val_fraction: float = 0.2, max_iter: int = 1000,
                 epochs: int = 10, lrs: Sequence[float] = (1e-4, 1e-3), weight_decay: float = 0.01,
                 head_init: str = "text", output_dir: str | None = None, model_name: str = "vlkd", batch_size: int = 64,
                 max_samples: int | None = None, prefix: str = "elevater", progress: bool = True):
        if mode not in MODES:
            raise UsageError(f"elevater: mode must be one of {', '.join(MODES)}, not '{mode}'")
        if num_shots is not None and (mode not in TRAINED_MODES or num_shots < 1):
            raise UsageError("elevater: num_shots (>= 1) applies to mode='linear-probe' or 'finetune' only")
        if head_init not in HEAD_INITS:
            raise UsageError(f"elevater: head_init must be one of {', '.join(HEAD_INITS)}, not '{head_init}'")
        # single values as given on the command line (`--eval elevater:datasets=mnist,seeds=0`)
        datasets = [datasets] if isinstance(datasets, str) else datasets
        seeds = [seeds] if isinstance(seeds, int) else seeds
        Cs = [Cs] if isinstance(Cs, (int, float)) else Cs
        lrs = [lrs] if isinstance(lrs, (int, float)) else lrs
        if not lrs or any(float(lr) <= 0 for lr in lrs) or int(epochs) < 1:
            raise UsageError("elevater: lrs must be positive learning rates and epochs >= 1")
        self.finetune_settings = FinetuneSettings(int(epochs), tuple(float(lr) for lr in lrs), float(weight_decay),
                                                  int(batch_size), val_fraction, progress)
        self.head_init = head_init
        self.root, self.dataset_json = root, dataset_json
        self.datasets = list(datasets) if datasets else None
        self.mode, self.num_shots = mode, num_shots
        default_seeds = (0, 1, 2) if num_shots else (0,)
        self.seeds = [int(s) for s in (seeds if seeds is not None else default_seeds)]
        self.Cs, self.val_fraction, self.max_iter = tuple(float(c) for c in Cs), val_fraction, max_iter
        self.output_dir, self.model_name = output_dir, model_name
        self.batch_size, self.max_samples = batch_size, max_samples
        self.prefix, self.progress = prefix, progress
        self.artifacts: dict[str, Any] = {}

    # -- data ---------------------------------------------------------------------------------
    def _split(self, name: str, split: str) -> ElevaterSplit:
        return ElevaterSplit(split=split, root=self.root, dataset=name, dataset_json=self.dataset_json,
                             length=self.max_samples)

    def _features(self, model: Any, ds: Any, what: str) -> torch.Tensor:
        return encode_dataset(model, ds, self.batch_size, self.max_samples, f"elevater: {what}",
                              self.progress).image_features

    @staticmethod
    def _targets(ds: Any, n: int) -> np.ndarray:
        if hasattr(ds, "targets"):
            return np.asarray(ds.targets)[:n]
        return np.array([int(ds[i]["label"]) for i in range(n)])

    # -- modes --------------------------------------------------------------------------------
    def _zeroshot(self, model: Any, test: Any) -> tuple[np.ndarray, int]:
        names = getattr(test, "prompt_classnames", None) or getattr(test, "classnames", None)
        if not names:
            raise UsageError("elevater: the dataset has no class names for zero-shot")
        templates = getattr(test, "templates", None) or ["a photo of a {}."]
        weights = zeroshot_classifier(model, names, templates, self.progress)
        feats = self._features(model, test, f"{getattr(test, 'name', 'dataset')} test")
        probs = torch.softmax(100.0 * feats @ weights.T, dim=1).numpy()
        return probs[None], 0

    def _train_indices(self, train: Any, train_y: np.ndarray, seed: int) -> np.ndarray:
        if self.num_shots is None:
            return np.arange(len(train_y))
        try:
            return few_shot_subset(train_y, self.num_shots, seed, getattr(train, "num_classes", None))
        except ValueError as exc:
            name = f"{getattr(train, 'name', 'dataset')}/{getattr(train, 'split', 'train')}"
            raise DataError(f"elevater: {name} cannot give {self.num_shots} shots per class "
                            f"(seed {seed}): {exc}") from None

    def _probe(self, model: Any, train: Any, test: Any, num_classes: int) -> tuple[np.ndarray, int, list]:
        name = getattr(test, "name", "dataset")
        train_x = self._features(model, train, f"{name} train").numpy()
        train_y = self._targets(train, len(train_x))
        test_x = self._features(model, test, f"{name} test").numpy()
        all_probs, selection = [], []
        for seed in self.seeds:
            idx = self._train_indices(train, train_y, seed)
            probs, best_C = probe_probs(train_x[idx], train_y[idx], test_x, num_classes, self.Cs,
                                        self.val_fraction, seed, self.max_iter)
            all_probs.append(probs)
            selection.append({"seed": seed, "C": best_C, "n_shots_total": len(idx)})
        return np.stack(all_probs), (train_x.shape[1] + 1) * num_classes, selection

    def _finetune(self, model: Any, train: Any, test: Any, test_n: int, num_classes: int,
                  metric: str) -> tuple[np.ndarray, int, list]:
        name = getattr(test, "name", "dataset")
        if not hasattr(getattr(model, "image_tower", None), "preprocess"):
            raise UsageError("elevater: mode='finetune' needs a vlkd DualEncoder (a model with an "
                             f"image_tower that has preprocess()), got {type(model).__name__}")
        n = len(train) if self.max_samples is None else min(len(train), self.max_samples)
        train_y = self._targets(train, n)
        weights = None
        if self.head_init == "text":
            names = getattr(train, "prompt_classnames", None) or getattr(train, "classnames", None)
            if not names:
                raise UsageError(f"elevater: {name} has no class names for head_init='text'; use head_init='random'")
            weights = zeroshot_classifier(model, names, getattr(train, "templates", None) or ["a photo of a {}."],
                                          self.progress)
        all_probs, selection, trainable = [], [], 0
        for seed in self.seeds:
            idx = self._train_indices(train, train_y, seed)
            result = finetune(model, train, idx, train_y[idx], test, test_n, num_classes,
                              lambda p, t: dataset_score(metric, p, t), seed, self.finetune_settings, weights, name)
            all_probs.append(result.test_probs)
            trainable = result.trainable_params
            selection.append({"seed": seed, "lr": result.lr, "val_scores": result.val_scores,
                              "n_train": result.n_train, "n_val": result.n_val})
        return np.stack(all_probs), trainable, selection

    # -- main ---------------------------------------------------------------------------------
    def _run_one(self, model: Any, name: str, train: Any, test: Any) -> tuple[dict, dict]:
        test_n = len(test) if self.max_samples is None else min(len(test), self.max_samples)
        targets = self._targets(test, test_n)
        num_classes = getattr(test, "num_classes", None) or len(getattr(test, "classnames", []) or []) \
            or int(targets.max()) + 1
        metric = metric_of(name)
        selection: list = []
        if self.mode == "zeroshot":
            probs, trainable = self._zeroshot(model, test)
            n_shot, seeds = 0, [0]
        else:
            if self.mode == "linear-probe":
                probs, trainable, selection = self._probe(model, train, test, num_classes)
            else:
                probs, trainable, selection = self._finetune(model, train, test, test_n, num_classes, metric)
            n_shot, seeds = (self.num_shots if self.num_shots is not None else -1), self.seeds
        # score what is submitted: the file holds probabilities rounded to 6 digits, and the
        # rounding can create ties, so the local number then equals the leaderboard's
        probs = np.round(np.asarray(probs, dtype=np.float64), 6)
        per_seed = [dataset_score(metric, p, targets) for p in probs]
        from .submission import make_record
        record = make_record(model, self.model_name, name, n_shot, seeds, probs, trainable)
        return record, {"metric": metric, "score": float(np.mean(per_seed)), "per_seed": per_seed,
                        "selection": selection}

    def evaluate(self, model: Any, dataset: Any = None, train_dataset: Any = None, **_: Any) -> dict[str, float]:
        jobs: list[tuple[str, Any, Any]] = []
        if dataset is not None:  # a single in-memory dataset overrides the configured root
            name = getattr(dataset, "name", None) or "custom"
            train = train_dataset
            if self.mode in TRAINED_MODES and train is None:
                from torch.utils.data import Subset
                labels = self._targets(dataset, len(dataset))
                tr, te = validation_split(labels if labels.ndim == 1 else labels.argmax(1), 0.5, 0)
                train, dataset = _Named(Subset(dataset, tr.tolist()), dataset), _Named(Subset(dataset, te.tolist()), dataset)
            jobs.append((name, train, dataset))
        else:
            if not self.root:
                raise UsageError("elevater: set the option root=<ELEVATER data directory> (or pass dataset=)")
            names = self.datasets or available_datasets(self.root, self.dataset_json)
            for name in names:
                train = self._split(name, "train") if self.mode in TRAINED_MODES else None
                jobs.append((name, train, self._split(name, "test")))
        records, scores = [], {}
        for name, train, test in jobs:
            record, score = self._run_one(model, name, train, test)
            records.append(record)
            scores[name] = score
        self.artifacts = {"records": records, "scores": scores}
        if self.output_dir:
            from .submission import write_submission
            self.artifacts["submission"] = str(write_submission(records, self.output_dir))
        metrics = {f"{self.prefix}/{n}/{s['metric']}": s["score"] for n, s in scores.items()}
        finite = [s["score"] for s in scores.values() if not math.isnan(s["score"])]
        metrics[f"{self.prefix}/average"] = float(np.mean(finite)) if finite else 0.0
        return metrics


class _Named(torch.utils.data.Dataset):
    """A Subset that keeps the parent's class metadata (names, templates, targets)."""

    def __init__(self, subset: Any, parent: Any):
        self.subset, self.parent = subset, parent
        for attr in ("name", "classnames", "prompt_classnames", "templates", "num_classes", "multilabel"):
            if hasattr(parent, attr):
                setattr(self, attr, getattr(parent, attr))
        if hasattr(parent, "targets"):
            self.targets = np.asarray(parent.targets)[subset.indices]

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, i: int) -> Any:
        return self.subset[i]
