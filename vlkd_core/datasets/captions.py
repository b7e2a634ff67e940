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
