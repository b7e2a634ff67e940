"""The PromptBERT pooler (Jiang et al. 2022, "PromptBERT: Improving BERT Sentence Embeddings with
Prompts"): the sentence goes into a template such as ``This sentence : "[X]" means [MASK].`` and
its representation is the last hidden state at the [MASK] token. Template denoising subtracts
the same representation for the template with an empty sentence, its tokens kept at the
positions they have around the real sentence (position ids after the sentence slot shifted by
the sentence's length), so only what the sentence adds remains."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

from vlkd_core.errors import UsageError

DEFAULT_TEMPLATE = 'This sentence : "[X]" means [MASK].'
SLOT, MASK = "[X]", "[MASK]"


@dataclass(frozen=True)
class Template:
    """Token ids around the sentence slot, and where the mask token sits."""

    prefix: list[int]
    suffix: list[int]
    lead: int          # special tokens before the first template token ([CLS] / <s>)
    mask_in_prefix: bool
    mask_offset: int   # index of the mask within prefix or suffix


def parse_template(tokenizer, template: str) -> Template:
    if template.count(SLOT) != 1 or template.count(MASK) != 1:
        raise UsageError(f"hf: prompt_template '{template}' must hold '{SLOT}' and '{MASK}' once each")
    if tokenizer.mask_token is None:
        raise UsageError("hf: pooler=promptbert needs a tokenizer with a mask token (a masked LM such as BERT)")
    before, after = template.replace(MASK, tokenizer.mask_token).split(SLOT)
    ids = [tokenizer(part, add_special_tokens=False)["input_ids"] if part.strip() else []
           for part in (before, after)]
    prefix, suffix = ids
    mask = tokenizer.mask_token_id
    if (prefix + suffix).count(mask) != 1:
        raise UsageError(f"hf: prompt_template '{template}' does not tokenise to one mask token")
    lead = tokenizer.build_inputs_with_special_tokens([-1]).index(-1)
    in_prefix = mask in prefix
    return Template(prefix, suffix, lead, in_prefix, (prefix if in_prefix else suffix).index(mask))


class PromptBert:
    """Tokenisation into the template and the [MASK] pooling (with the template bias)."""

    def __init__(self, tokenizer, template: str, denoise: bool, max_seq_length: int):
        self.tokenizer, self.denoise = tokenizer, denoise
        self.template = parse_template(tokenizer, template)
        self.empty = tokenizer.build_inputs_with_special_tokens(self.template.prefix + self.template.suffix)
        self.room = max_seq_length - len(self.empty)  # tokens left for the sentence
        if self.room < 1:
            raise UsageError(f"hf: prompt_template leaves no room for a sentence in max_seq_length {max_seq_length}")

    def mask_position(self, length: int) -> int:
        t = self.template
        return t.lead + (t.mask_offset if t.mask_in_prefix else len(t.prefix) + length + t.mask_offset)

    def preprocess(self, texts: list[str]) -> dict[str, torch.Tensor]:
        t, tok = self.template, self.tokenizer
        sentences = tok(list(texts), add_special_tokens=False, truncation=True, max_length=self.room)["input_ids"]
        rows = [tok.build_inputs_with_special_tokens(t.prefix + s + t.suffix) for s in sentences]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
        out = {"input_ids": ids, "attention_mask": mask,
               "mask_index": torch.tensor([self.mask_position(len(s)) for s in sentences]),
               "sentence_length": torch.tensor([len(s) for s in sentences])}
        if "token_type_ids" in tok.model_input_names:
            out["token_type_ids"] = torch.zeros_like(ids)
        return out

    def pool(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The [MASK] hidden state of each sentence, minus the template bias when denoising."""
        keys = ("input_ids", "attention_mask", "token_type_ids")
        hidden = model(**{k: v for k, v in inputs.items() if k in keys}).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pooled = hidden[rows, inputs["mask_index"]]
        if not self.denoise:
            return pooled
        return pooled - self.template_bias(model, inputs["sentence_length"])

    def template_bias(self, model: nn.Module, lengths: torch.Tensor) -> torch.Tensor:
        """[B, hidden]: the [MASK] state of the template alone, for each sentence length."""
        unique, inverse = torch.unique(lengths, return_inverse=True)
        t = self.template
        ids = torch.tensor(self.empty, device=lengths.device).expand(len(unique), -1)
        positions = torch.arange(ids.shape[1], device=lengths.device).repeat(len(unique), 1)
        positions += _first_position(model)
        positions[:, t.lead + len(t.prefix):] += unique.unsqueeze(1)  # the slot keeps its width
        kwargs = {"token_type_ids": torch.zeros_like(ids)} if "token_type_ids" in self.tokenizer.model_input_names else {}
        hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions,
                       **kwargs).last_hidden_state
        return hidden[:, self.mask_position(0)][inverse]


def _first_position(model: nn.Module) -> int:
    """The position id of the first token: 0 (BERT), or padding_idx + 1 (RoBERTa's embeddings
    count positions from after the padding index)."""
    padding_idx = getattr(getattr(model, "embeddings", None), "padding_idx", None)
    return 0 if padding_idx is None else int(padding_idx) + 1


def check_model(model: nn.Module, denoise: bool) -> None:
    if denoise and "position_ids" not in inspect.signature(model.forward).parameters:
        raise UsageError(f"hf: template_denoise needs a model that accepts position_ids; "
                         f"{type(model).__name__} does not (pass template_denoise=false)")
