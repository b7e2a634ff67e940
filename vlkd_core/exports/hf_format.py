"""``hf``: each Hugging Face tower as a ``save_pretrained`` folder (``image/``, ``text/``: model
with its image processor or tokenizer; a sentence-transformers tower as its own folder), and its
head (with a CLIP-style tower projection in front) as a module folder ``{side}_head/``:
``model.safetensors`` with ``layers.N.weight`` / ``layers.N.bias`` and ``config.json`` listing the
linear layers, their activations and a final L2 normalisation. ``vlkd_export.json`` says how each
tower pools (``pooler``), so ``AutoModel.from_pretrained`` + that pooling + the head gives the
run's features. Towers of other families are left out (and named there)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from .heads import layers
from .st_format import _library, _tower_kind


def _hf_image(tower: nn.Module) -> bool:
    return _library(getattr(tower, "model", None)) == "transformers" and hasattr(tower, "processor")


def _side_fits(model: Any, side: str) -> str | None:
    tower = getattr(model, f"{side}_tower")
    if side == "image" and not _hf_image(tower):
        return f"the image tower ({model.config.image}) is not a Hugging Face tower"
    if side == "text":
        if _tower_kind(tower) is None:
            return f"the text tower ({model.config.text}) is not a Hugging Face tower"
        if getattr(tower, "prompt", None) is not None or getattr(tower, "promptbert", None) is not None:
            return "the text tower uses learnable prompts or the PromptBERT pooler"
    head = layers(getattr(model, f"{side}_head"))
    return f"the {side} head: {head}" if isinstance(head, str) else None


def fits(model: Any) -> str | None:
    reasons = [_side_fits(model, side) for side in ("image", "text")]
    if all(reasons):
        if all("not a Hugging Face" in r for r in reasons):
            return f"neither tower is a Hugging Face tower ({model.config.image}, {model.config.text})"
        return reasons[0]
    return next((r for r in reasons if r and "not a Hugging Face" not in r), None)


def _save_tower(tower: nn.Module, folder: Path) -> dict:
    if _tower_kind(tower) == "st":
        tower.st.save(str(folder))
        return {"pooler": "sentence-transformers (modules.json)", "normalize": False}
    tower.model.save_pretrained(folder)
    (tower.tokenizer if hasattr(tower, "tokenizer") else tower.processor).save_pretrained(folder)
    info = {"pooler": tower.pooler, "normalize": bool(getattr(tower, "normalize", False))}
    if hasattr(tower, "processor"):  # a run at another input size than the model's own
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
        stack, normalize = layers(getattr(model, f"{side}_head"))
        projection = getattr(tower, "projection", None)  # CLIP-style: not part of save_pretrained
        stack = ([(projection, nn.Identity())] if projection is not None else []) + stack
        _save_head(stack, normalize, folder / f"{side}_head")
        sides[side] = {"exported": True, "folder": side, "head": f"{side}_head", **info}
    return {"towers": sides}
