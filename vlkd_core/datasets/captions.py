"""Captions: the captions of a sample, the one training reads in an epoch, and captions for
classification samples (a prompt template filled with the class name)."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def captions_of(item: Mapping) -> list[str]:
    """Every caption of a sample: its ``captions`` list when it has any, else its ``text`` (a
    string, or a list); empty when it has neither (an image-only evaluation sample). Training
    draws from these (:func:`training_caption`), evaluation scores all of them and the feature
    store keeps a vector for each."""
    captions = item.get("captions") or item.get("text")
    if captions is None:
        return []
    return [captions] if isinstance(captions, str) else [str(c) for c in captions]


def class_caption(templates: list[str], classname: str, index: int, seed: int = 0,
                  mode: str = "random") -> str:
    """``mode="random"``: a template chosen deterministically from (seed, index), so captions
    vary across samples but are reproducible; ``mode="first"``: always the first template."""
    from ..evaluation.prompts import format_prompt
    if mode == "first":
        return format_prompt(templates[0], classname)
    digest = hashlib.sha256(f"{seed}/{index}".encode()).digest()
    return format_prompt(templates[int.from_bytes(digest[:4], "little") % len(templates)], classname)


def training_caption(text: str | Sequence[str], seed: int, epoch: int, index: object) -> str:
    """One caption of a sample (a string, or its :func:`captions_of` list) for this epoch: a pure
    function of (seed, epoch, index), so every epoch sees a fresh draw, worker processes agree,
    and a resumed run sees the captions an uninterrupted one would have."""
    if isinstance(text, str):
        return text
    if len(text) < 2:
        if not text:
            from ..errors import DataError
            raise DataError(f"sample {index} has no caption (neither 'text' nor 'captions')")
        return str(text[0])
    from .sampling import derive_seed
    return str(text[derive_seed(seed, "caption", epoch, index) % len(text)])
