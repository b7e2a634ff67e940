"""``onnx``: each tower with its head as one ONNX graph (``image.onnx``: pixel batch -> features;
``text.onnx``: the tokenizer's tensors -> features), batch (and sequence) axes dynamic. Inputs are
what ``vlkd.load(RUN).preprocess`` / ``.tokenizer`` produce (``vlkd_export.json`` lists the input
names and the image size, mean and std); features are not normalised."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

OPSET = 18


class _ImageGraph(nn.Module):
    def __init__(self, tower: nn.Module, head: nn.Module):
        super().__init__()
        self.tower, self.head = tower, head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.tower(inputs[0]))


class _TextGraph(nn.Module):
    """Positional inputs in ``names`` order; a tower taking a dict gets them back as one."""

    def __init__(self, tower: nn.Module, head: nn.Module, names: list[str] | None):
        super().__init__()
        self.tower, self.head, self.names = tower, head, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        tokens = dict(zip(self.names, inputs)) if self.names else inputs[0]
        return self.head(self.tower(tokens))


def _sample_image(model: Any) -> torch.Tensor:
    from PIL import Image
    image = Image.new("RGB", (64, 48), (120, 40, 200))
    return torch.stack([model.preprocess(image)] * 2)


def _export(graph: nn.Module, args: tuple, path: Path, names: list[str]) -> None:
    """torch.export-based ONNX (torch's default exporter); every axis may vary (Dim.AUTO keeps
    an axis the graph fixes, such as a tower's fixed token count, static)."""
    from torch.export import Dim
    shapes = (tuple({i: Dim.AUTO for i in range(a.dim())} for a in args),)
    torch.onnx.export(graph.eval(), args, str(path), input_names=names, output_names=["features"],
                      dynamic_shapes=shapes, opset_version=OPSET, dynamo=True, external_data=False,
                      verbose=False)


@torch.no_grad()
def write(model: Any, folder: Path) -> dict:
    model.to("cpu")
    image = _sample_image(model)
    _export(_ImageGraph(model.image_tower, model.image_head), (image,), folder / "image.onnx", ["pixel_values"])
    tokens = model.tokenizer(["a photo of a red circle", "two small blue squares"])
    names = list(tokens) if isinstance(tokens, dict) or hasattr(tokens, "keys") else None
    args = tuple(tokens[n] for n in names) if names else (tokens,)
    input_names = names or ["input_ids"]
    _export(_TextGraph(model.text_tower, model.text_head, names), args, folder / "text.onnx", input_names)
    spec = getattr(model.image_tower, "image_spec", None)
    return {"files": {"image": "image.onnx", "text": "text.onnx"}, "normalized": False,
            "image_input": {"name": "pixel_values", "shape": list(image.shape[1:]),
                            "mean": list(spec.mean) if spec else None, "std": list(spec.std) if spec else None},
            "text_inputs": input_names}


class OnnxFormat:
    """Fits every run: any tower with its head is traced as it is."""

    def fits(self, model: Any) -> str | None:
        return None

    def write(self, model: Any, folder: Path) -> dict:
        return write(model, folder)
