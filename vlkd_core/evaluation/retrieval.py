"""Image↔text retrieval.

Metrics: ``retrieval/image_to_text_R@{1,5,10}``, ``retrieval/text_to_image_R@{1,5,10}`` and
``retrieval/mean_recall`` (mean of the six). A sample's captions are its ``captions`` list, else
its ``text`` (a string or a list), so several captions per image are supported.
Artifacts: ``texts``, ``text_to_image``, ``examples`` — for the first ``examples`` images, the
``top_k`` retrieved caption indices and texts and whether one of its own captions is among them
(``{"image_index", "captions", "retrieved", "retrieved_texts", "hit"}``).
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import DataError
from .base import BaseEvaluator
from .features import encode_dataset, encode_texts
from .metrics import retrieval_recall


class RetrievalEvaluator(BaseEvaluator):
    """Options: ``ks`` (recall cut-offs, default 1, 5, 10), ``chunk_size`` (rows of the
    similarity matrix held at once), ``examples`` (images recorded in the artifacts)."""

    name = "retrieval"

    def __init__(self, ks: tuple[int, ...] | list[int] = (1, 5, 10), chunk_size: int = 1024,
                 examples: int = 16, **options: Any):
        super().__init__(**options)
        ks = [ks] if isinstance(ks, int) else ks
        self.ks, self.chunk_size, self.examples = tuple(int(k) for k in ks), chunk_size, examples

    def evaluate(self, model: Any, dataset: Any = None, **_: Any) -> dict[str, float]:
        dataset = self.resolve_dataset(dataset)
        data = encode_dataset(model, dataset, self.batch_size, self.max_samples, "retrieval: images",
                              self.progress, workers=self.workers)
        if not data.texts:
            raise DataError("retrieval: the dataset has no captions ('text' or 'captions')")
        text_feats = encode_texts(model, data.texts, description="retrieval: captions",
                                  show_progress=self.progress)
        owner = torch.tensor(data.text_to_image)
        recalls = retrieval_recall(data.image_features, text_feats, owner, self.ks, self.chunk_size)
        metrics = {self.key(k): v for k, v in recalls.items()}
        metrics[self.key("mean_recall")] = sum(recalls.values()) / len(recalls)
        n = min(self.examples, data.image_features.shape[0])
        top_k = min(max(self.ks), text_feats.shape[0])
        examples = []
        if n:
            top = (data.image_features[:n] @ text_feats.T).topk(top_k, dim=1).indices
            for i in range(n):
                own = [j for j, o in enumerate(data.text_to_image) if o == i]
                got = top[i].tolist()
                examples.append({"image_index": i, "captions": [data.texts[j] for j in own],
                                 "retrieved": got, "retrieved_texts": [data.texts[j] for j in got],
                                 "hit": any(j in own for j in got)})
        self.artifacts = {"texts": data.texts, "text_to_image": data.text_to_image, "examples": examples}
        return metrics
