"""Turning token states into one vector per input."""
from __future__ import annotations

import torch

POOLERS = ("cls", "cls-before-pooler", "mean", "max", "promptbert")  # promptbert: text only (promptbert.py)


def pool(output, pooler: str, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``cls``: the model's pooler output (BERT's tanh-dense CLS, CLIP's EOS token), falling
    back to the first token when the model has no pooler; ``cls-before-pooler``: the first
    token's last hidden state; ``mean`` / ``max``: over tokens, padding masked out."""
    hidden = output.last_hidden_state
    if pooler == "cls":
        pooled = getattr(output, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)  # conv models give [B, C, 1, 1]
        pooler = "cls-before-pooler"
    if hidden.dim() == 4:  # conv feature maps [B, C, H, W] -> tokens [B, HW, C]
        hidden = hidden.flatten(2).transpose(1, 2)
    if pooler == "cls-before-pooler":
        return hidden[:, 0]
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if pooler == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if pooler == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(1).values
    raise ValueError(f"unknown pooler {pooler!r}")
