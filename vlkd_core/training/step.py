"""What a batch gives a loss besides features: per-row ids for UniCL-style positives."""
from __future__ import annotations

import torch

from .data import Batch


def caption_ids(texts: list[str]) -> torch.Tensor:
    """Identical captions get identical ids (UniCL-style positives). A hash of the text, not a
    per-batch counter, so ids agree across ranks when the loss gathers them."""
    import hashlib
    return torch.tensor([int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") >> 1
                         for t in texts], dtype=torch.long)


def contrastive_ids(batch: Batch, class_labels: bool) -> torch.Tensor:
    """Per row: the id of its class (when ``class_labels`` and the row has a label) or of its
    caption. Class ids are negative and caption ids non-negative, so the two never collide and
    a batch mixing labelled and unlabelled rows keeps every class's rows positives."""
    ids = caption_ids(batch.texts)
    if class_labels:
        labelled = batch.labels >= 0
        ids = torch.where(labelled, -1 - batch.labels.clamp(min=0), ids)
    return ids
