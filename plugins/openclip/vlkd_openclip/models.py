"""The model names of the family: open_clip's model configs (built-in and added ones)."""
from __future__ import annotations


def list_models() -> list[str]:
    import open_clip
    return list(open_clip.list_models())
