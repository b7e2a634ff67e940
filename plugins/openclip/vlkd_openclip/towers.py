"""The two halves of an OpenCLIP model as separate towers (the other half is not kept)."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def _measure(tower: nn.Module, dummy) -> int:
    was_training = tower.training
    tower.eval()
    out = tower(dummy)
    tower.train(was_training)
    return int(out.shape[-1])


class OpenCLIPImageTower(nn.Module):
    """``model.visual`` with open_clip's train / eval image transforms."""

    modality = "image"

    def __init__(self, visual: nn.Module, preprocess_train, preprocess_val):
        super().__init__()
        self.visual = visual
        self._train, self._eval = preprocess_train, preprocess_val
        size = getattr(visual, "image_size", 224)
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.output_dim = _measure(self, torch.zeros(1, 3, *size))

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return (self._train if train else self._eval)(image)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)

    def lock_tower(self, unlocked_groups: int = 0, freeze_bn_stats: bool = False) -> None:
        """open_clip's LiT lock of the image tower (``lock_image_tower``)."""
        self.visual.lock(unlocked_groups=unlocked_groups, freeze_bn_stats=freeze_bn_stats)


class OpenCLIPTextTower(nn.Module):
    """``encode_text`` of a CLIP model (whose ``visual`` was deleted) or a CustomTextCLIP's
    ``text`` module, with open_clip's tokenizer."""

    modality = "text"

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
