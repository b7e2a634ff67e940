"""The two halves of an OpenCLIP model as separate towers (the other half is not kept)."""
from __future__ import annotations

import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transformer import text_global_pool
from torch import nn

from vlkd_core.sdk import DepthFromBlocks, ImagePreprocess, ImageSpec, interpolation_mode

from .prompts import PromptContext, make_prompt, text_parts

OPEN_CLIP_FORMAT = "open_clip"  # the export format of this family (vlkd_openclip.export)


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

    def __init__(self, visual: nn.Module, unlocked_groups: int = 0, freeze_bn_stats: bool = False):
        super().__init__()
        self.visual = visual
        # open_clip's LiT lock settings, applied when the engine locks the tower (lock_tower)
        self.unlocked_groups, self.freeze_bn_stats = unlocked_groups, freeze_bn_stats
        self.image_spec = image_spec(visual)
        self._preprocess = ImagePreprocess(self.image_spec)
        size = getattr(visual, "image_size", 224)
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.output_dim = _measure(self, torch.zeros(1, 3, *size))

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return self._preprocess(image, train)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """--grad-checkpointing: open_clip's own (transformer blocks recompute activations)."""
        self.visual.set_grad_checkpointing(enable)

    def exports_as(self, format: str) -> nn.Module | None:
        """ExportsAs: the open_clip vision module, for the ``open_clip`` export format."""
        return self.visual if format == OPEN_CLIP_FORMAT else None

    def lock_tower(self) -> None:
        """Called by the engine to lock this tower: open_clip's LiT lock of the image tower
        (``lock_image_tower``) with the ``unlocked_groups`` / ``freeze_bn_stats`` it was built with."""
        self.requires_grad_(False)
        self.visual.lock(unlocked_groups=self.unlocked_groups, freeze_bn_stats=self.freeze_bn_stats)


def _trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Tokens up to the last non-padding (non-zero) position of the batch."""
    used = torch.nonzero(tokens.ne(0).any(0))
    return tokens[:, :int(used[-1]) + 1] if len(used) else tokens


class OpenCLIPTextTower(DepthFromBlocks, nn.Module):
    """``encode_text`` of a CLIP model (whose ``visual`` was deleted) or a CustomTextCLIP's
    ``text`` module, with open_clip's tokenizer."""

    modality = "text"
    # --layer-decay depth: open_clip text transformer blocks, or an HF text encoder's layers;
    # learnable prompts sit with the embeddings (depth 0)
    DEPTH_PATTERNS = (
        (r"text\.transformer\.resblocks\.\d+", r"(text\.(token_embedding|positional_embedding)|prompt\.)"),
        (r"text\.transformer\.encoder\.layers?\.\d+", r"text\.transformer\.embeddings"))

    def __init__(self, model: nn.Module, tokenizer, unlocked_layers: int = 0):
        super().__init__()
        if hasattr(model, "text"):  # CustomTextCLIP / CoCa: a self-contained text module
            self.text, self._custom = model.text, True
        else:  # CLIP: the text modules are attributes of the model itself
            scale = getattr(model, "logit_scale", None)
            if isinstance(scale, torch.Tensor):  # the pair's similarity scale σ (ReportsLogitScale)
                self.logit_scale = float(scale.detach().exp())
            for name in ("visual", "logit_scale", "logit_bias"):
                if hasattr(model, name):
                    delattr(model, name)
            self.text, self._custom = model, False
        self.tokenizer = tokenizer
        self.unlocked_layers = unlocked_layers  # open_clip's text lock, applied by lock_tower
        self.prompt: PromptContext | None = None
        self.output_dim = _measure(self, self.preprocess(["a photo"]))

    @property
    def context_length(self) -> int:
        """The model's context length (positional embeddings), prompts included."""
        return int(self.text.positional_embedding.shape[0])

    def add_prompt(self, tokens: int, phrase: str | None = None) -> None:
        """CoOp: learnable context vectors after the start token (see ``prompts``)."""
        parts = text_parts(self.text)
        self.prompt = make_prompt(parts, self.tokenizer, tokens, phrase, self.context_length)

    def preprocess(self, texts: list[str], train: bool = False) -> torch.Tensor:
        if self.prompt is None:
            tokens = self.tokenizer(list(texts))
            return _trim_padding(tokens) if train and self._trimmable() else tokens
        return self.tokenizer(list(texts), context_length=self.context_length - self.prompt.num_tokens)

    @property
    def trims_padding(self) -> bool:
        """Training tokens stop after the batch's longest caption (see ``_trimmable``)."""
        return self.prompt is None and self._trimmable()

    def _trimmable(self) -> bool:
        """Training batches may drop the padding after the longest caption: under a causal mask
        no token attends to later ones, so the pooled (argmax/EOS/first) token's features do not
        change, and the transformer runs on ~12 positions instead of 77."""
        text = self.text
        pool = getattr(text, "text_pool_type", "argmax")
        return not self._custom and getattr(text, "attn_mask", None) is not None and pool in ("argmax", "eos", "first")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.prompt is not None:
            return self._encode_prompted(tokens)
        if self._custom:
            return self.text(tokens)
        if tokens.shape[1] < self.context_length:  # trimmed training tokens
            text = self.text
            return self._encode_embedded(text.token_embedding(tokens).to(text.transformer.get_cast_dtype()), tokens)
        return self.text.encode_text(tokens)

    def prompted_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, context_length, width] input of the transformer before positional embeddings:
        start token, the N context vectors, the caption's tokens."""
        text = self.text
        return self.prompt.insert(text.token_embedding(tokens).to(text.transformer.get_cast_dtype()))

    def _encode_prompted(self, tokens: torch.Tensor) -> torch.Tensor:
        # open_clip's encode_text with the context inserted; pooling sees ids shifted by N
        return self._encode_embedded(self.prompted_embeddings(tokens), self.prompt.extend_ids(tokens))

    def _encode_embedded(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """open_clip's encode_text from the token embeddings ``x`` [B, L<=context, width] on."""
        text = self.text
        length = x.shape[1]
        x = x + text.positional_embedding[:length].to(x.dtype)
        mask = text.attn_mask[:length, :length] if text.attn_mask is not None else None
        x = text.ln_final(text.transformer(x, attn_mask=mask))
        pool_type = getattr(text, "text_pool_type", getattr(text, "pool_type", "argmax"))
        eos = getattr(text, "text_eos_id", getattr(text, "eos_id", None))
        x = text_global_pool(x, ids, pool_type, eos_token_id=eos)
        projection = text.text_projection
        if projection is None:
            return x
        return projection(x) if isinstance(projection, nn.Linear) else x @ projection

    def exports_as(self, format: str) -> nn.Module | str | None:
        """ExportsAs: the open_clip text model (a CLIP without its ``visual``, or a
        CustomTextCLIP's ``text`` module), for the ``open_clip`` export format."""
        if format != OPEN_CLIP_FORMAT:
            return None
        if self.prompt is not None:
            return "the text tower has learnable prompts (CoOp), which an OpenCLIP model cannot hold"
        return self.text

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """--grad-checkpointing: open_clip's own, on the text transformer."""
        if self._custom:
            self.text.set_grad_checkpointing(enable)
        else:  # a CLIP whose visual tower was removed: its text transformer directly
            self.text.transformer.grad_checkpointing = enable

    def lock_tower(self) -> None:
        """Called by the engine to lock this tower: open_clip's text lock (``lock_text_tower``),
        all but the last ``unlocked_layers`` it was built with; learnable prompts stay trainable."""
        self.requires_grad_(False)
        if self._custom:
            self.text.lock(self.unlocked_layers, True)
        else:
            from open_clip.transformer import lock_text_tower
            lock_text_tower(self.text, self.unlocked_layers)
        if self.prompt is not None:
            self.prompt.requires_grad_(True)
