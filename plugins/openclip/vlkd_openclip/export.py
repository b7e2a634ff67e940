"""``open_clip``: both towers OpenCLIP -> a folder ``open_clip.create_model_and_transforms(
"local-dir:DIR")`` loads (``open_clip_config.json`` + ``open_clip_model.safetensors``).

The two towers are put back into one CLIP model (the image tower's ``vision_cfg``, the text
tower's ``text_cfg``). A linear head on a tower is folded into that tower's final projection
(``x @ P`` becomes ``x @ P Wᵀ``); a head with a bias, a non-linear head or learnable prompts
cannot be expressed in an OpenCLIP model and are refused, naming why. ``logit_scale`` keeps
open_clip's initial value (the run's temperature belongs to its loss).

Which towers fit is the towers' own answer (``exports_as("open_clip")``: the open_clip module a
tower wraps, or why not), so a tower of another family holding an open_clip module fits too."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.sdk import parse_backbone_spec, as_linear, export_part, has_bias

FORMAT = "open_clip"

# where each tower's last projection lives (ViT / ModifiedResNet / timm trunk; CLIP text / HF text)
PROJECTIONS = {"image": ("proj", "attnpool.c_proj", "head.proj"), "text": ("text_projection", "proj")}
CONFIG, WEIGHTS = "open_clip_config.json", "open_clip_model.safetensors"


def _part(model: Any, side: str) -> Any:
    """What ``side``'s tower offers this format: the open_clip module it wraps (the image
    tower's ``visual``, the text tower's text model), why not (a string), or None."""
    return export_part(getattr(model, f"{side}_tower"), FORMAT)


def _inner(model: Any, side: str) -> nn.Module:
    return _part(model, side)


def _get(module: nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part, None)
    return module


def _fold(model: Any, side: str) -> tuple[dict[str, torch.Tensor], int | None] | str:
    """(the tensors of ``side``'s projection with its head folded in, the new width), or why not."""
    head = as_linear(getattr(model, f"{side}_head"))
    if isinstance(head, str):
        return f"the {side} head cannot be folded into OpenCLIP's projection: {head}"
    if head is None:
        return {}, None
    inner = _inner(model, side)
    path = next((p for p in PROJECTIONS[side] if _get(inner, p) is not None), None)
    proj = _get(inner, path) if path else None
    bias_why = (f"the {side} head's bias cannot be folded into OpenCLIP's bias-free projection (train "
                f"with --head-option bias=false, or export as safetensors or onnx)")
    with torch.no_grad():
        if isinstance(proj, nn.Linear):
            if proj.bias is None and has_bias(head):
                return bias_why
            out = {f"{path}.weight": head.weight @ proj.weight}
            if proj.bias is not None:
                out[f"{path}.bias"] = head.weight @ proj.bias + (head.bias if head.bias is not None else 0)
            return out, int(head.weight.shape[0])
        if isinstance(proj, torch.Tensor) and proj.dim() == 2:
            return (bias_why if has_bias(head) else ({path: proj.detach() @ head.weight.T}, int(head.weight.shape[0])))
    return f"the {side} tower has no projection to fold its head into"


def fits(model: Any) -> str | None:
    parts = {side: _part(model, side) for side in ("image", "text")}
    for side, part in parts.items():
        if part is None:
            return f"the {side} tower ({getattr(model.config, side)}) is not an OpenCLIP tower"
    for part in parts.values():
        if isinstance(part, str):  # e.g. learnable prompts (CoOp), which an OpenCLIP model cannot hold
            return part
    folds = [_fold(model, side) for side in ("image", "text")]
    reasons = [f for f in folds if isinstance(f, str)]
    return reasons[0] if reasons else None


def _name(config: Any, side: str) -> str:
    """The open_clip model name the tower was built from (its spec, or the --*-pretrained folder
    or hub repo that replaced it)."""
    pretrained = getattr(config, f"{side}_pretrained")
    if pretrained and pretrained.startswith("hf-hub:"):
        return pretrained
    if pretrained and Path(pretrained).expanduser().is_dir():
        return f"local-dir:{Path(pretrained).expanduser()}"
    return parse_backbone_spec(getattr(config, side)).model


def _model_cfg(model: Any, width: int) -> dict:
    import open_clip
    cfgs = {}
    for side in ("image", "text"):
        name = _name(model.config, side)
        try:
            cfgs[side] = open_clip.get_model_config(name)
        except Exception as exc:  # a hub config that is not cached, an unreadable folder
            raise UsageError(f"open_clip export: cannot read the model config of '{name}' "
                             f"({type(exc).__name__})") from None
        if cfgs[side] is None:
            raise UsageError(f"open_clip export: open_clip has no model config '{name}' in this process")
    merged = copy.deepcopy(cfgs["text"])
    merged["vision_cfg"] = copy.deepcopy(cfgs["image"]["vision_cfg"])
    merged["vision_cfg"]["image_size"] = _inner(model, "image").image_size
    for key in (set(cfgs["image"]) | set(cfgs["text"])) - {"embed_dim", "vision_cfg", "text_cfg"}:
        if cfgs["image"].get(key) != cfgs["text"].get(key):
            raise UsageError(f"open_clip export: the towers' models differ in '{key}', one CLIP model cannot hold both")
    merged["embed_dim"] = width
    return merged


def _tower_states(model: Any) -> tuple[dict[str, torch.Tensor], int]:
    """The CLIP state dict of both towers (heads folded in) and the shared width."""
    states, widths = {}, {}
    for side, prefix in (("image", "visual."), ("text", "")):
        inner = _inner(model, side)
        changed, width = _fold(model, side)
        if side == "text" and not hasattr(inner, "encode_text"):
            prefix = "text."  # a CustomTextCLIP's self-contained text module
        states.update({prefix + k: v for k, v in {**inner.state_dict(), **changed}.items()})
        widths[side] = width or getattr(model, f"{side}_tower").output_dim
    if widths["image"] != widths["text"]:
        raise UsageError(f"open_clip export: image features are {widths['image']}-d and text features "
                         f"{widths['text']}-d; one CLIP model needs one width")
    return states, widths["image"]


def write(model: Any, folder: Path) -> dict:
    import open_clip
    from safetensors.torch import save_file
    model.to("cpu")
    states, width = _tower_states(model)
    preprocess = dict(getattr(_inner(model, "image"), "preprocess_cfg", {}) or {})
    (folder / CONFIG).write_text(json.dumps({"model_cfg": _model_cfg(model, width),
                                             "preprocess_cfg": preprocess}, indent=2, default=list))
    clip = open_clip.create_model(f"local-dir:{folder}", pretrained_text=False)  # weights: next
    wanted = clip.state_dict()
    unknown = sorted(set(states) - set(wanted))
    missing = sorted(k for k in set(wanted) - set(states) if not k.startswith("logit_"))
    if unknown or missing:
        raise UsageError(f"open_clip export: the towers do not fit the rebuilt CLIP model "
                         f"(unexpected {unknown[:3]}, missing {missing[:3]})")
    clip.load_state_dict({**wanted, **states}, strict=True)
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(folder / WEIGHTS))
    return {"files": {"config": CONFIG, "weights": WEIGHTS},
            "load": "open_clip.create_model_and_transforms('local-dir:FOLDER')"}


class OpenClipFormat:
    """``open_clip``: both towers in one OpenCLIP folder (see the module docstring)."""

    def fits(self, model: Any) -> str | None:
        return fits(model)

    def write(self, model: Any, folder: Path) -> dict:
        return write(model, folder)
