"""ELEVATER full fine-tuning: a copy of the image tower plus a linear head, trained end to end.

The head is initialised from the zero-shot text classifier (``head_init="text"``, the toolkit's
``init_head_with_text_encoder``) or at random. Logits are ``exp(logit_scale) · W · norm(f) + b``
with a learnable scale starting at 1/0.07 (CLIP's). Cross-entropy for multi-class sets, binary
cross-entropy for multi-label ones (VOC-2007); AdamW with a cosine schedule; training images go
through the tower's ``preprocess(train=True)`` augmentation, predictions through the eval one.

The learning rate is chosen on a validation split carved from the training images (never the
test set: test images enter only after the choice, and test labels are not an argument at all),
then a fresh copy is trained on every training image with the chosen rate. The caller's model
is never modified.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vlkd_core.evaluation.features import progress_bar

from .probe import carve_validation

HEAD_INITS = ("text", "random")


@dataclass
class FinetuneSettings:
    epochs: int = 10
    lrs: Sequence[float] = (1e-4, 1e-3)
    weight_decay: float = 0.01
    batch_size: int = 32
    val_fraction: float = 0.2
    progress: bool = True


@dataclass
class FinetuneResult:
    """Test probabilities ``[N, C]`` plus how the learning rate was chosen: ``val_scores``
    (validation metric per rate, empty when only one rate was given), ``lr``, and the sizes of
    the carved training / validation parts."""

    test_probs: np.ndarray
    lr: float
    val_scores: dict[float, float] = field(default_factory=dict)
    n_train: int = 0
    n_val: int = 0
    trainable_params: int = 0


class FinetuneClassifier(nn.Module):
    """A private copy of the image tower (and head) with a cosine linear classifier on top."""

    def __init__(self, image_tower: nn.Module, image_head: nn.Module, dim: int, num_classes: int,
                 text_weights: torch.Tensor | None = None):
        super().__init__()
        self.tower = copy.deepcopy(image_tower)
        self.head = copy.deepcopy(image_head) if image_head is not None else nn.Identity()
        self.fc = nn.Linear(dim, num_classes)
        if text_weights is not None:
            with torch.no_grad():
                self.fc.weight.copy_(text_weights)
                self.fc.bias.zero_()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.requires_grad_(True)  # full fine-tuning, even of a tower locked during training

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = F.normalize(self.head(self.tower(images)).float(), dim=-1)
        return self.logit_scale.exp() * self.fc(feats)


def _images(dataset: Any, indices: np.ndarray, preprocess: Callable, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
    def load(batch: np.ndarray) -> torch.Tensor:
        return torch.stack([preprocess(dataset[int(indices[i])]["image"], train=train) for i in batch])
    return load


def _tower_dim(model: Any, dataset: Any, index: int) -> int:
    return int(model.encode_images([dataset[index]["image"]]).shape[1])


def train_classifier(model: Any, dataset: Any, indices: np.ndarray, targets: np.ndarray, num_classes: int,
                     lr: float, seed: int, settings: FinetuneSettings, text_weights: torch.Tensor | None,
                     description: str) -> FinetuneClassifier:
    """Fine-tunes a fresh copy on ``dataset[indices]`` (``targets`` aligned with ``indices``)."""
    torch.manual_seed(seed)
    dim = text_weights.shape[1] if text_weights is not None else _tower_dim(model, dataset, int(indices[0]))
    clf = FinetuneClassifier(model.image_tower, getattr(model, "image_head", None), dim, num_classes,
                             text_weights).to(model.device)
    multilabel = targets.ndim == 2
    y = torch.as_tensor(targets, dtype=torch.float32 if multilabel else torch.long)
    load = _images(dataset, indices, model.image_tower.preprocess, train=True)
    opt = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=settings.weight_decay)
    bs = max(1, min(settings.batch_size, len(indices)))
    steps_per_epoch = math.ceil(len(indices) / bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, settings.epochs * steps_per_epoch))
    rng = np.random.default_rng(seed)
    clf.train()
    with progress_bar(description, settings.epochs * steps_per_epoch, settings.progress) as advance:
        for _ in range(settings.epochs):
            order = rng.permutation(len(indices))
            for start in range(0, len(order), bs):
                batch = order[start:start + bs]
                logits = clf(load(batch).to(model.device))
                target = y[batch].to(model.device)
                loss = (F.binary_cross_entropy_with_logits(logits, target) if multilabel
                        else F.cross_entropy(logits, target))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                advance(1)
    return clf.eval()


@torch.no_grad()
def predict(clf: FinetuneClassifier, dataset: Any, indices: np.ndarray, multilabel: bool,
            batch_size: int = 64) -> np.ndarray:
    """Class probabilities (softmax, or sigmoid for multi-label) with eval preprocessing."""
    device = next(clf.parameters()).device
    load = _images(dataset, indices, clf.tower.preprocess, train=False)
    out = []
    for start in range(0, len(indices), batch_size):
        logits = clf(load(np.arange(start, min(start + batch_size, len(indices)))).to(device)).float()
        out.append(torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1))
    return torch.cat(out).cpu().numpy().astype(np.float64)


def finetune(model: Any, train: Any, train_idx: np.ndarray, train_targets: np.ndarray, test: Any,
             test_n: int, num_classes: int, score: Callable[[np.ndarray, np.ndarray], float], seed: int,
             settings: FinetuneSettings, text_weights: torch.Tensor | None = None,
             name: str = "dataset") -> FinetuneResult:
    """Chooses the learning rate on a validation split of ``train[train_idx]`` with ``score``
    (the dataset's metric), retrains on all of ``train_idx`` and predicts ``test[:test_n]``."""
    multilabel = train_targets.ndim == 2
    lrs = [float(lr) for lr in settings.lrs]
    val_scores: dict[float, float] = {}
    n_train, n_val = len(train_idx), 0
    if len(lrs) > 1:
        tr, va = carve_validation(train_targets, settings.val_fraction, seed)
        n_train, n_val = len(tr), len(va)
        for lr in lrs:
            clf = train_classifier(model, train, train_idx[tr], train_targets[tr], num_classes, lr, seed,
                                   settings, text_weights, f"elevater: {name} fine-tune lr={lr:g} (val)")
            value = score(predict(clf, train, train_idx[va], multilabel), train_targets[va])
            val_scores[lr] = -math.inf if math.isnan(value) else float(value)
        best = max(lrs, key=lambda lr: val_scores[lr])  # ties: the first (smallest if sorted) rate
    else:
        best = lrs[0]
    clf = train_classifier(model, train, train_idx, train_targets, num_classes, best, seed, settings,
                           text_weights, f"elevater: {name} fine-tune lr={best:g}")
    probs = predict(clf, test, np.arange(test_n), multilabel)
    trainable = sum(p.numel() for p in clf.parameters() if p.requires_grad)
    return FinetuneResult(probs, best, val_scores, n_train, n_val, trainable)
