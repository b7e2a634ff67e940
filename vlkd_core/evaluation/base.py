"""Shared evaluator plumbing: which dataset to score, sample limits, metric prefix, artifacts.

Every evaluator is built from options (``vlkd.build_evaluator("zeroshot", dataset="shapes",
dataset_options={"size": 32}, split="test")``) so it can run periodically during training; a
``dataset=`` object passed to ``evaluate`` overrides the configured one.

After ``evaluate`` returns, ``evaluator.artifacts`` holds non-scalar results for reports
(documented per evaluator), e.g. ``per_class`` tables and ``predictions``.
"""
from __future__ import annotations

from typing import Any

from ..errors import UsageError


class BaseEvaluator:
    """Options common to all dataset-based evaluators.

    dataset:          registry name of the dataset (``vlkd components list datasets``)
    dataset_options:  keyword options for that dataset (e.g. ``{"root": ..., "size": 32}``)
    split:            split to evaluate on (passed to the dataset as ``split=``)
    max_samples:      evaluate on at most this many samples (cheap periodic evaluation)
    batch_size:       images per forward pass
    prefix:           metric-name prefix (defaults to the evaluator name), so two instances on
                      different data log distinct names
    progress:         show a rich progress bar on a terminal
    workers:          DataLoader processes that decode and transform images (default: one per
                      core, at most 4; 0 for sets of two batches or fewer)
    """

    name = "evaluator"

    def __init__(self, dataset: str | None = None, dataset_options: dict | None = None,
                 split: str = "test", max_samples: int | None = None, batch_size: int = 64,
                 prefix: str | None = None, progress: bool = True, workers: int | None = None,
                 **unknown: Any):
        if unknown:  # subclasses forward **options here, so this is where typos surface
            raise UsageError(f"evaluator '{self.name}' has no option '{next(iter(unknown))}' "
                             f"(see its docstring or `vlkd components show evaluator {self.name}`)")
        if max_samples is not None and max_samples <= 0:
            raise UsageError(f"{self.name}: max_samples must be positive, not {max_samples}")
        if batch_size <= 0:
            raise UsageError(f"{self.name}: batch_size must be positive, not {batch_size}")
        if workers is not None and workers < 0:
            raise UsageError(f"{self.name}: workers must be 0 or more, not {workers}")
        self.dataset_name, self.dataset_options = dataset, dict(dataset_options or {})
        self.split, self.max_samples, self.batch_size = split, max_samples, batch_size
        self.prefix = prefix or self.name
        self.progress, self.workers = progress, workers
        self.artifacts: dict[str, Any] = {}

    def build_dataset(self, split: str | None = None) -> Any:
        """The configured dataset for ``split`` (default: the evaluation split)."""
        if not self.dataset_name:
            raise UsageError(f"evaluator '{self.name}' needs a dataset: set the option "
                             f"dataset=<name> or pass dataset= to evaluate()")
        from ..api import build_dataset
        options = dict(self.dataset_options)
        options.setdefault("split", split or self.split)
        return build_dataset(self.dataset_name, **options)

    def resolve_dataset(self, dataset: Any = None) -> Any:
        return dataset if dataset is not None else self.build_dataset()

    def key(self, metric: str) -> str:
        return f"{self.prefix}/{metric}"


class TrainTestEvaluator(BaseEvaluator):
    """Evaluators that fit something on training features (linear probe, k-NN).

    train_split:        split of the configured dataset to fit on
    max_train_samples:  fit on at most this many training samples
    holdout_fraction:   when ``evaluate`` gets only ``dataset=`` (no ``train_dataset=``), that
                        set is split (stratified, seeded) into a fitting part and this held-out
                        evaluation fraction
    seed:               seed for the hold-out split (and any sampling)
    """

    def __init__(self, train_split: str = "train", max_train_samples: int | None = None,
                 holdout_fraction: float = 0.5, seed: int = 0, **options: Any):
        super().__init__(**options)
        if not 0.0 < holdout_fraction < 1.0:
            raise UsageError(f"{self.name}: holdout_fraction must be in (0, 1), not {holdout_fraction}")
        self.train_split, self.max_train_samples = train_split, max_train_samples
        self.holdout_fraction, self.seed = holdout_fraction, seed

    def train_test_features(self, model: Any, dataset: Any = None, train_dataset: Any = None):
        """(train EncodedDataset, test EncodedDataset) with labels."""
        from .features import EncodedDataset, encode_dataset
        from .metrics import validation_split

        def enc(ds, limit, what):
            return encode_dataset(model, ds, self.batch_size, limit, f"{self.name}: {what}",
                                  self.progress, need_labels=True, workers=self.workers)

        if dataset is not None and train_dataset is None:
            data = enc(dataset, self.max_samples, "features")
            fit_idx, eval_idx = validation_split(data.labels.numpy(), self.holdout_fraction, self.seed)
            if self.max_train_samples is not None:
                fit_idx = fit_idx[: self.max_train_samples]
            pick = lambda idx: EncodedDataset(data.image_features[idx], data.labels[idx])  # noqa: E731
            return pick(fit_idx), pick(eval_idx)
        train_ds = train_dataset if train_dataset is not None else self.build_dataset(self.train_split)
        test_ds = dataset if dataset is not None else self.build_dataset()
        return enc(train_ds, self.max_train_samples, "train features"), enc(test_ds, self.max_samples, "test features")
