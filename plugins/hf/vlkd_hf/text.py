"""Text towers: a transformers AutoModel with a pooler, or a sentence-transformers folder."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vlkd_core.sdk import DepthFromBlocks

from .checkpointing import set_grad_checkpointing
from .depth import HF_DEPTH
from .formats import HF_FORMAT, ST_FORMAT
from .pooling import pool
from .promptbert import PromptBert, check_model
from .prompts import PromptContext, make_prompt


def _tensors(batch: Any) -> dict[str, torch.Tensor]:
    return {k: v for k, v in dict(batch).items() if isinstance(v, torch.Tensor)}


class HFTextTower(DepthFromBlocks, nn.Module):
    """AutoModel + AutoTokenizer; ``preprocess`` returns the tokenizer's dict of tensors."""

    modality = "text"
    DEPTH_PATTERNS = HF_DEPTH  # --layer-decay

    def __init__(self, model: nn.Module, tokenizer, pooler: str, max_seq_length: int | None,
                 normalize: bool = False, projection: nn.Module | None = None):
        super().__init__()
        self.model, self.tokenizer, self.pooler, self.normalize = model, tokenizer, pooler, normalize
        self.projection = projection
        limit = getattr(model.config, "max_position_embeddings", None) or 512
        model_max = getattr(tokenizer, "model_max_length", limit)
        self.max_seq_length = int(max_seq_length or min(limit, model_max if model_max < 1e6 else limit))
        self.output_dim = int(projection.out_features if projection is not None else model.config.hidden_size)
        self.prompt: PromptContext | None = None
        self.promptbert: PromptBert | None = None

    @property
    def context_length(self) -> int:
        """Tokens a caption may take (prompts included): the tokenizer truncates to it."""
        return self.max_seq_length

    def add_prompt(self, tokens: int, phrase: str | None = None) -> None:
        """CoOp: learnable context vectors after the first token (see ``prompts``)."""
        self.prompt = make_prompt(self.model, self.tokenizer, tokens, phrase, self.max_seq_length)

    def use_promptbert(self, template: str, denoise: bool) -> None:
        """The PromptBERT pooler: template, [MASK] state, template bias (see ``promptbert``)."""
        check_model(self.model, denoise)
        self.promptbert = PromptBert(self.tokenizer, template, denoise, self.max_seq_length)

    def preprocess(self, texts: list[str], train: bool = False) -> dict[str, torch.Tensor]:
        if self.promptbert is not None:
            return self.promptbert.preprocess(list(texts))
        room = self.max_seq_length - (self.prompt.num_tokens if self.prompt is not None else 0)
        return _tensors(self.tokenizer(list(texts), padding=True, truncation=True,
                                       max_length=room, return_tensors="pt"))

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.promptbert is not None:
            features = self.promptbert.pool(self.model, inputs)
        else:
            inputs = self.prompt.model_inputs(self.model, inputs) if self.prompt is not None else inputs
            features = pool(self.model(**inputs), self.pooler, inputs.get("attention_mask"))
        if self.projection is not None:
            features = self.projection(features)
        return nn.functional.normalize(features, dim=-1) if self.normalize else features

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """--grad-checkpointing: transformers' own gradient checkpointing."""
        set_grad_checkpointing(self.model, enable)

    def exports_as(self, format: str) -> nn.Module | str | None:
        """ExportsAs: this tower for the ``sentence-transformers`` and ``hf`` formats, unless
        learnable prompts or the PromptBERT pooler shape its features (no such module there)."""
        if format not in (ST_FORMAT, HF_FORMAT):
            return None
        if self.prompt is not None or self.promptbert is not None:
            return "the text tower uses learnable prompts or the PromptBERT pooler"
        return self

    def lock_tower(self) -> None:
        """Called by the engine to lock this tower: everything but learnable prompts."""
        self.requires_grad_(False)
        if self.prompt is not None:
            self.prompt.requires_grad_(True)


class SentenceTransformerTower(DepthFromBlocks, nn.Module):
    """A sentence-transformers model with its folder's own modules (pooling, normalisation)."""

    modality = "text"
    DEPTH_PATTERNS = HF_DEPTH  # --layer-decay

    def __init__(self, st_model: nn.Module, max_seq_length: int | None = None):
        super().__init__()
        self.st = st_model
        if max_seq_length is not None:
            self.st.max_seq_length = int(max_seq_length)
        # sentence-transformers 5.x renamed a few methods; use whichever this version has
        dim = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
        self.output_dim = int(dim())
        self._tokenize_method = "preprocess" if hasattr(st_model, "preprocess") else "tokenize"

    @property
    def max_seq_length(self) -> int:
        return self.st.max_seq_length

    @property
    def context_length(self) -> int:
        """Tokens a caption may take: sentence-transformers truncates to ``max_seq_length``."""
        return self.st.max_seq_length

    @property
    def transformer(self) -> nn.Module:
        """The wrapped transformers model (where adapters go)."""
        return self.st[0].auto_model

    def preprocess(self, texts: list[str], train: bool = False) -> dict[str, torch.Tensor]:
        return _tensors(getattr(self.st, self._tokenize_method)(list(texts)))

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """--grad-checkpointing: transformers' own gradient checkpointing."""
        set_grad_checkpointing(self.transformer, enable)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.st(dict(inputs))["sentence_embedding"]

    def exports_as(self, format: str) -> nn.Module | None:
        """ExportsAs: this tower (its folder's modules as they are) for the
        ``sentence-transformers`` and ``hf`` formats."""
        return self if format in (ST_FORMAT, HF_FORMAT) else None
