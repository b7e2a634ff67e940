"""Learnable prompts (CoOp, Zhou et al. 2022) for Hugging Face text encoders: N context vectors
inserted right after the first token ([CLS] / <s>), fed through ``inputs_embeds``; the caption is
tokenised to N fewer tokens so the sequence fits the same maximum length."""
from __future__ import annotations

import inspect

import torch
from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.sdk import CTX_INIT_STD, PromptContext as BasePromptContext


class PromptContext(BasePromptContext):
    """CoOp context for an HF encoder: attention mask and token types follow the inserted vectors."""

    def extend(self, per_token: torch.Tensor) -> torch.Tensor:
        """[B, T] attention mask / token types -> [B, T + N], the context taking the first
        token's value (attended, segment A)."""
        first = per_token[:, :1]
        return torch.cat([first, first.expand(-1, self.num_tokens), per_token[:, 1:]], dim=1)

    def model_inputs(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The tokenizer's tensors turned into ``inputs_embeds`` with the context inserted."""
        embeds = model.get_input_embeddings()(inputs["input_ids"])
        out = {"inputs_embeds": self.insert(embeds)}
        for key in ("attention_mask", "token_type_ids"):
            if key in inputs:
                out[key] = self.extend(inputs[key])
        return out


def make_prompt(model: nn.Module, tokenizer, tokens: int, phrase: str | None,
                max_seq_length: int) -> PromptContext:
    """CoOp's context: random normal (std 0.02), or the word embeddings of ``phrase``'s tokens
    (N is then their count; ``tokens``, when given too, must agree)."""
    if "inputs_embeds" not in inspect.signature(model.forward).parameters:
        raise UsageError(f"hf: prompt_tokens needs a model that accepts inputs_embeds; "
                         f"{type(model).__name__} does not")
    table = model.get_input_embeddings()
    if phrase is not None:
        ids = tokenizer(phrase, add_special_tokens=False)["input_ids"]
        if not ids:
            raise UsageError(f"hf: prompt_init '{phrase}' has no tokens")
        if tokens and tokens != len(ids):
            raise UsageError(f"hf: prompt_tokens={tokens} but prompt_init '{phrase}' is {len(ids)} "
                             f"tokens; drop prompt_tokens or make them agree")
        with torch.no_grad():
            ctx = table(torch.tensor(ids)).float()
    else:
        ctx = torch.randn(tokens, table.weight.shape[1]) * CTX_INIT_STD
    if ctx.shape[0] > max_seq_length - 2:
        raise UsageError(f"hf: prompt_tokens={ctx.shape[0]} leaves no room for a caption in "
                         f"max_seq_length {max_seq_length}")
    return PromptContext(ctx)
