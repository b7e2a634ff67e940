"""The formats vlkd ships, one module each, imported when used (so ``vlkd export --help`` can
list them without loading torch)."""
from __future__ import annotations

import importlib
from typing import Any, Callable

from .registry import Format, register_format


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)(*args)
    return call


def _format(name: str, module: str, summary: str) -> Format:
    return Format(name, summary, _lazy(module, "fits"), _lazy(module, "write"))


for _name, _module, _summary in (
        ("safetensors", "safetensors_format", "config + weights that vlkd.load reads (every run)"),
        ("onnx", "onnx_format", "image.onnx and text.onnx: each tower with its head (every run)"),
        ("open_clip", "open_clip_format", "a folder open_clip loads as local-dir:DIR (OpenCLIP towers)"),
        ("sentence-transformers", "st_format",
         "a SentenceTransformer folder: the text tower and head (HF text towers)"),
        ("hf", "hf_format", "save_pretrained folders of the HF towers, heads as module folders (HF towers)"),
):
    register_format(_format(_name, _module, _summary))
