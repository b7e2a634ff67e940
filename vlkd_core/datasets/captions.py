"""Captions for classification samples: a prompt template filled with the class name."""
from __future__ import annotations

import hashlib


def class_caption(templates: list[str], classname: str, index: int, seed: int = 0,
                  mode: str = "random") -> str:
    """``mode="random"``: a template chosen deterministically from (seed, index), so captions
    vary across samples but are reproducible; ``mode="first"``: always the first template."""
    from ..evaluation.prompts import format_prompt
    if mode == "first":
        return format_prompt(templates[0], classname)
    digest = hashlib.sha256(f"{seed}/{index}".encode()).digest()
    return format_prompt(templates[int.from_bytes(digest[:4], "little") % len(templates)], classname)


def training_caption(text: str | list[str], seed: int, epoch: int, index: object) -> str:
    """One caption of a multi-caption sample (its ``captions`` list) for this epoch: a pure
    function of (seed, epoch, index), so every epoch sees a fresh draw, worker processes agree,
    and a resumed run sees the captions an uninterrupted one would have. A string is returned
    as is."""
    if isinstance(text, str):
        return text
    from .sampling import derive_seed
    return str(text[derive_seed(seed, "caption", epoch, index) % len(text)])
