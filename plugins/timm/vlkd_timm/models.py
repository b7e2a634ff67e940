"""The model names of the family: every architecture timm can build."""
from __future__ import annotations


def list_models() -> list[str]:
    import timm
    return list(timm.list_models())
