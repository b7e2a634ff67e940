"""``hf``: each Hugging Face tower as a ``save_pretrained`` folder (``image/``, ``text/``: model
with its image processor or tokenizer; a sentence-transformers tower as its own folder), and its
head (with a CLIP-style tower projection in front) as a module folder ``{side}_head/``:
``model.safetensors`` with ``layers.N.weight`` / ``layers.N.bias`` and ``config.json`` listing the
linear layers, their activations and a final L2 normalisation. ``vlkd_export.json`` says how each
tower pools (``pooler``), so ``AutoModel.from_pretrained`` + that pooling + the head gives the
run's features. Towers of other families are left out (and named there); which towers fit is their own answer
(``exports_as("hf")``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from vlkd_core.sdk import export_part, head_layers

from .export_st import tower_kind
from .formats import HF_FORMAT
from .text import SentenceTransformerTower
from .vision import HFImageTower


def _side_fits(model: Any, side: str) -> str | None:
    tower = getattr(model, f"{side}_tower")
    if side == "image" and not isinstance(export_part(tower, HF_FORMAT), HFImageTower):
        return f"the image tower ({model.config.image}) is not a Hugging Face tower"
    if side == "text":
        kind = tower_kind(tower, HF_FORMAT)
        if kind is None:
            return f"the text tower ({model.config.text}) is not a Hugging Face tower"
        if kind not in ("st", "auto"):
            return kind
    head = head_layers(getattr(model, f"{side}_head"))
    return f"the {side} head: {head}" if isinstance(head, str) else None


def fits(model: Any) -> str | None:
    reasons = [_side_fits(model, side) for side in ("image", "text")]
    if all(reasons):
        if all("not a Hugging Face" in r for r in reasons):
            return f"neither tower is a Hugging Face tower ({model.config.image}, {model.config.text})"
        return reasons[0]
    return next((r for r in reasons if r and "not a Hugging Face" not in r), None)


def _save_tower(tower: nn.Module, folder: Path) -> dict:
    if isinstance(tower, SentenceTransformerTower):
        tower.st.save(str(folder))
        return {"pooler": "sentence-transformers (modules.json)", "normalize": False}
    image = isinstance(tower, HFImageTower)
    tower.model.save_pretrained(folder)
    (tower.processor if image else tower.tokenizer).save_pretrained(folder)
    info = {"pooler": tower.pooler, "normalize": bool(getattr(tower, "normalize", False))}
    if image:  # a run at another input size than the model's own
        info.update(image_size=tower.image_size, interpolate_pos_encoding=bool(tower.interpolate_pos_encoding))
    return info


def _save_head(stack: list[tuple[nn.Linear, nn.Module]], normalize: bool, folder: Path) -> None:
    from safetensors.torch import save_file
    folder.mkdir()
    tensors, config = {}, []
    for i, (linear, activation) in enumerate(stack):
        tensors[f"layers.{i}.weight"] = linear.weight.detach().contiguous()
        if linear.bias is not None:
            tensors[f"layers.{i}.bias"] = linear.bias.detach().contiguous()
        config.append({"in_features": linear.in_features, "out_features": linear.out_features,
                       "bias": linear.bias is not None, "activation": type(activation).__name__})
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"layers": config, "normalize": normalize}, indent=2))


def write(model: Any, folder: Path) -> dict:
    model.to("cpu")
    sides: dict[str, Any] = {}
    for side in ("image", "text"):
        reason = _side_fits(model, side)
        if reason:
            sides[side] = {"exported": False, "why": reason}
            continue
        tower = getattr(model, f"{side}_tower")
        info = _save_tower(tower, folder / side)
        stack, normalize = head_layers(getattr(model, f"{side}_head"))
        projection = getattr(tower, "projection", None)  # CLIP-style: not part of save_pretrained
        stack = ([(projection, nn.Identity())] if projection is not None else []) + stack
        _save_head(stack, normalize, folder / f"{side}_head")
        sides[side] = {"exported": True, "folder": side, "head": f"{side}_head", **info}
    return {"towers": sides}


class HFFormat:
    """``hf``: ``save_pretrained`` folders of the HF towers (see the module docstring)."""

    def fits(self, model: Any) -> str | None:
        return fits(model)

    def write(self, model: Any, folder: Path) -> dict:
        return write(model, folder)
