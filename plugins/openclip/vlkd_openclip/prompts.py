"""Learnable prompts (CoOp, Zhou et al. 2022) for open_clip's own text transformer: N context
vectors inserted right after the start token; the caption gets N fewer token slots, so the
sequence keeps the model's context length and its positional embeddings."""
from __future__ import annotations

import torch
from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.sdk import CTX_INIT_STD, PromptContext as BasePromptContext


class PromptContext(BasePromptContext):
    """CoOp context for open_clip's text transformer: token ids follow the inserted vectors."""

    def extend_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids aligned with :meth:`insert`'s output, the start token standing in for the
        context: argmax / eos pooling then finds the end token N places later."""
        start = tokens[:, :1].expand(-1, self.num_tokens)
        return torch.cat([tokens[:, :1], start, tokens[:, 1:]], dim=1)


def text_parts(text: nn.Module) -> nn.Module:
    """The module holding open_clip's text transformer parts (a CLIP model whose text modules
    are attributes, or a TextTransformer); refuses text encoders prompts cannot enter."""
    if not all(hasattr(text, a) for a in ("token_embedding", "positional_embedding", "ln_final")):
        raise UsageError(f"openclip: prompt_tokens needs open_clip's own text transformer; "
                         f"{type(text).__name__} (a Hugging Face text encoder) has none")
    if getattr(text, "cls_emb", None) is not None or getattr(text, "use_pad_mask", False):
        raise UsageError("openclip: prompt_tokens does not support text towers with a class "
                         "token or padding mask (CoCa-style)")
    return text


def phrase_embeddings(text: nn.Module, tokenizer, phrase: str, context_length: int) -> torch.Tensor:
    """Token embeddings [n, width] of ``phrase``'s own tokens (no start/end/padding): those of
    the phrase tokenised minus those of an empty string tokenised the same way."""
    phrase_ids = tokenizer([phrase], context_length=context_length)[0]
    empty_ids = tokenizer([""], context_length=context_length)[0]
    pad = empty_ids[-1]
    count = int((phrase_ids != pad).sum() - (empty_ids != pad).sum())
    if count < 1:
        raise UsageError(f"openclip: prompt_init '{phrase}' has no tokens")
    with torch.no_grad():
        return text.token_embedding(phrase_ids[1:1 + count]).float()


def make_prompt(text: nn.Module, tokenizer, tokens: int, phrase: str | None,
                context_length: int) -> PromptContext:
    """CoOp's context: random normal (std 0.02), or the embeddings of ``phrase`` (N is then the
    phrase's token count; ``tokens``, when given too, must agree)."""
    width = text.token_embedding.weight.shape[1]
    if phrase is not None:
        ctx = phrase_embeddings(text, tokenizer, phrase, context_length)
        if tokens and tokens != ctx.shape[0]:
            raise UsageError(f"openclip: prompt_tokens={tokens} but prompt_init '{phrase}' is "
                             f"{ctx.shape[0]} tokens; drop prompt_tokens or make them agree")
    else:
        ctx = torch.randn(tokens, width) * CTX_INIT_STD
    if ctx.shape[0] > context_length - 2:
        raise UsageError(f"openclip: prompt_tokens={ctx.shape[0]} leaves no room for a caption "
                         f"in the context length {context_length}")
    return PromptContext(ctx)
