"""``sentence-transformers``: a Hugging Face text tower (a sentence-transformers folder, or a
transformers model with a cls/mean/max pooler) and its head -> a folder
``SentenceTransformer(DIR)`` loads: the tower's modules, then one ``Dense`` module per head layer
(and ``Normalize`` when the head normalises). ``model.encode(texts)`` then gives the run's text
features. Which text towers fit is their own answer (``exports_as("sentence-transformers")``)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vlkd_core.sdk import export_part, head_layers

from .formats import ST_FORMAT
from .text import HFTextTower, SentenceTransformerTower

POOLERS = {"cls-before-pooler": "cls", "mean": "mean", "max": "max"}  # vlkd -> sentence-transformers


def tower_kind(tower: nn.Module, format: str) -> str | None:
    """``st`` (a sentence-transformers folder), ``auto`` (a transformers model with a pooler),
    why the tower cannot be written in ``format`` (its ExportsAs answer), or None (no HF tower)."""
    part = export_part(tower, format)
    if isinstance(part, str):
        return part
    if isinstance(part, SentenceTransformerTower):
        return "st"
    return "auto" if isinstance(part, HFTextTower) else None


@torch.no_grad()
def _bert_pooler(tower: nn.Module) -> nn.Linear | None | str:
    """pooler=cls: BERT's tanh-dense over [CLS] (a Dense module), the first token when the
    model has no pooler, else why not (e.g. CLIP's end-of-text pooling)."""
    dense = getattr(getattr(tower.model, "pooler", None), "dense", None)
    if isinstance(dense, nn.Linear):
        return dense
    sample = tower.preprocess(["a photo"])
    if getattr(tower.model(**sample), "pooler_output", None) is None:
        return None
    return f"its pooler_output ({type(tower.model).__name__}) has no sentence-transformers module"


def fits(model: Any) -> str | None:
    tower = model.text_tower
    kind = tower_kind(tower, ST_FORMAT)
    if kind is None:
        return f"the text tower ({model.config.text}) is not a Hugging Face text tower"
    if kind not in ("st", "auto"):
        return kind
    if kind == "auto":  # a transformers AutoModel with a pooler
        if tower.pooler != "cls" and tower.pooler not in POOLERS:
            return f"sentence-transformers has no '{tower.pooler}' pooling"
        if tower.pooler == "cls" and isinstance(_bert_pooler(tower), str):
            return _bert_pooler(tower)
    head = head_layers(model.text_head)
    return f"the text head cannot be a Dense module: {head}" if isinstance(head, str) else None


def _dense(linear: nn.Linear, activation: nn.Module) -> nn.Module:
    from sentence_transformers.sentence_transformer import modules as st_modules
    return st_modules.Dense(linear.in_features, linear.out_features, bias=linear.bias is not None,
                            activation_function=activation, init_weight=linear.weight.detach().clone(),
                            init_bias=None if linear.bias is None else linear.bias.detach().clone())


def _hf_modules(tower: nn.Module, scratch: Path) -> list[nn.Module]:
    """Transformer + Pooling (+ BERT's pooler, the tower's projection, Normalize) for a
    transformers text tower."""
    from sentence_transformers.sentence_transformer import modules as st_modules
    tower.model.save_pretrained(scratch)
    tower.tokenizer.save_pretrained(scratch)
    out: list[nn.Module] = [st_modules.Transformer(str(scratch), max_seq_length=tower.max_seq_length)]
    hidden = tower.model.config.hidden_size
    out.append(st_modules.Pooling(hidden, pooling_mode=POOLERS.get(tower.pooler, "cls")))
    pooler = _bert_pooler(tower) if tower.pooler == "cls" else None
    if pooler is not None:
        out.append(_dense(pooler, nn.Tanh()))
    if tower.projection is not None:
        out.append(_dense(tower.projection, nn.Identity()))
    if tower.normalize:
        out.append(st_modules.Normalize())
    return out


def write(model: Any, folder: Path) -> dict:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as st_modules
    model.to("cpu")
    tower = model.text_tower
    head, normalize = head_layers(model.text_head)
    with tempfile.TemporaryDirectory() as scratch:
        modules = list(tower.st) if tower_kind(tower, ST_FORMAT) == "st" else _hf_modules(tower, Path(scratch))
        modules += [_dense(linear, activation) for linear, activation in head]
        if normalize:
            modules.append(st_modules.Normalize())
        SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return {"load": "sentence_transformers.SentenceTransformer(FOLDER)"}


class SentenceTransformersFormat:
    """``sentence-transformers``: the text tower and its head (see the module docstring)."""

    def fits(self, model: Any) -> str | None:
        return fits(model)

    def write(self, model: Any, folder: Path) -> dict:
        return write(model, folder)
