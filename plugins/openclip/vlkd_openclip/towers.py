"""The two halves of an OpenCLIP model as separate towers (the other half is not kept)."""
from __future__ import annotations

import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import nn

from vlkd_core.depth import DepthFromBlocks
from vlkd_core.images import ImagePreprocess, ImageSpec, interpolation_mode


@torch.no_grad()
def _measure(tower: nn.Module, dummy) -> int:
    was_training = tower.training
    tower.eval()
    out = tower(dummy)
    tower.train(was_training)
    return int(out.shape[-1])


def image_spec(visual: nn.Module) -> ImageSpec:
    """Side, normalisation and filter from open_clip's ``visual.preprocess_cfg``: the core's
    transforms then equal open_clip's own (shortest-side resize, centre crop; training crop
    scale 0.9-1), with transparency composited onto white instead of black."""
    cfg = dict(getattr(visual, "preprocess_cfg", {}) or {})
    size = cfg.get("size", getattr(visual, "image_size", 224))
    size = size[-1] if isinstance(size, (tuple, list)) else size
    return ImageSpec(int(size), tuple(cfg.get("mean", OPENAI_DATASET_MEAN)),
                     tuple(cfg.get("std", OPENAI_DATASET_STD)), interpolation_mode(cfg.get("interpolation")))


class OpenCLIPImageTower(DepthFromBlocks, nn.Module):
    """``model.visual`` with the core image transforms at open_clip's preprocessing settings."""

    modality = "image"
    # --layer-decay depth: ViT residual blocks, ModifiedResNet bottlenecks, timm-trunk ViT blocks
    DEPTH_PATTERNS = (
        (r"visual\.transformer\.resblocks\.\d+", r"visual\.(class_embedding|positional_embedding|conv1|ln_pre)"),
        (r"visual\.layer\d+\.\d+", r"visual\.(conv|bn)\d"),
        (r"visual\.trunk\.blocks\.\d+", r"visual\.trunk\.(patch_embed|cls_token|reg_token|pos_embed)"))

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual
        self.image_spec = image_spec(visual)
        self._preprocess = ImagePreprocess(self.image_spec)
        size = getattr(visual, "image_size", 224)
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.output_dim = _measure(self, torch.zeros(1, 3, *size))

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return self._preprocess(image, train)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)

    def lock_tower(self, unlocked_groups: int = 0, freeze_bn_stats: bool = False) -> None:
        """open_clip's LiT lock of the image tower (``lock_image_tower``)."""
        self.visual.lock(unlocked_groups=unlocked_groups, freeze_bn_stats=freeze_bn_stats)


class OpenCLIPTextTower(DepthFromBlocks, nn.Module):
    """``encode_text`` of a CLIP model (whose ``visual`` was deleted) or a CustomTextCLIP's
    ``text`` module, with open_clip's tokenizer."""

    modality = "text"
    # --layer-decay depth: open_clip text transformer blocks, or an HF text encoder's layers
    DEPTH_PATTERNS = (
        (r"text\.transformer\.resblocks\.\d+", r"text\.(token_embedding|positional_embedding)"),
        (r"text\.transformer\.encoder\.layers?\.\d+", r"text\.transformer\.embeddings"))

    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        if hasattr(model, "text"):  # CustomTextCLIP / CoCa: a self-contained text module
            self.text, self._custom = model.text, True
        else:  # CLIP: the text modules are attributes of the model itself
            for name in ("visual", "logit_scale", "logit_bias"):
                if hasattr(model, name):
                    delattr(model, name)
            self.text, self._custom = model, False
        self.tokenizer = tokenizer
        self.output_dim = _measure(self, self.preprocess(["a photo"]))

    def preprocess(self, texts: list[str], train: bool = False) -> torch.Tensor:
        return self.tokenizer(list(texts))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text(tokens) if self._custom else self.text.encode_text(tokens)

    def lock_tower(self, unlocked_layers: int = 0, freeze_layer_norm: bool = True) -> None:
        """open_clip's text lock (``lock_text_tower``): all but the last ``unlocked_layers``."""
        if self._custom:
            self.text.lock(unlocked_layers, freeze_layer_norm)
        else:
            from open_clip.transformer import lock_text_tower
            lock_text_tower(self.text, unlocked_layers)
