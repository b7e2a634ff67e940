"""``--teacher-model``: a trained dual encoder beside the student (TinyCLIP, CLIP-KD, MobileCLIP).

The teacher is locked and in eval mode; it is not part of the Bundle's parameters or state
(checkpoints hold the student; a resumed run rebuilds the teacher from the same spec). Losses
read its features of the step's batch through :class:`~vlkd_core._model.loss_inputs.LossInputs`
(``teacher_image``, ``teacher_text``, ``teacher_logit_scale``): images as the teacher's own
preprocessing renders the very crop the student sees (:class:`~vlkd_core._model.images.PairedViews`),
captions through a feature cache (a caption's embedding never changes).

SPEC is one of:
- a vlkd run, checkpoint or safetensors export (``vlkd_core.load``): its towers and heads, and
  the logit scale of its contrastive loss;
- ``family:model``: both towers of one family (``openclip:ViT-B-32``, ``--teacher-pretrained``
  a tag or file), the scale its towers report (``logit_scale``);
- ``IMAGE_SPEC+TEXT_SPEC``: two towers (``--teacher-pretrained A+B``), of one width.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._model import encoding
from ..errors import UsageError
from .._runtime.notices import notice

DEFAULT_SCALE = 100.0  # CLIP's trained (and capped) logit scale, when a teacher reports none
# CPU BLAS and oneDNN take other kernels for one or two rows (matrix-vector), whose sums round
# differently (~1e-7): below this, a batch is padded so a row's feature never depends on its batch
MIN_ROWS = 4


class TeacherModel(nn.Module):
    """A locked dual encoder: ``encode_image(tensor)``, ``encode_text(tokens)``, ``logit_scale``
    (σ, not its log), ``image_spec`` (what its image tower's inputs must look like)."""

    def __init__(self, model: nn.Module, logit_scale: float, spec: str):
        super().__init__()
        self.model, self.logit_scale, self.spec = model, float(logit_scale), spec
        self.model.requires_grad_(False).eval()
        self.image_spec = getattr(model.image_tower, "image_spec", None)
        if self.image_spec is None:
            raise UsageError(f"--teacher-model {spec}: its image tower declares no image_spec, so the "
                             "student's crop cannot be rendered for it")
        size = self.image_spec.size
        widths = (self.encode_image(torch.zeros(1, 3, size, size)).shape[-1], self.encode_texts(["a"]).shape[-1])
        if widths[0] != widths[1]:
            raise UsageError(f"--teacher-model {spec}: image features are {widths[0]}-d and text "
                             f"features {widths[1]}-d; a teacher's two towers must share a width")
        self.output_dim = int(widths[0])

    def train(self, mode: bool = True):  # always eval: a locked teacher
        return super().train(False)

    def encode_image(self, images: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
        """Preprocessed images -> float32 features (:func:`vlkd_core._model.encoding.features`)."""
        return _features(self.model.image_tower, self.model.image_head, images, device)

    def encode_texts(self, texts: list[str], device: torch.device | None = None) -> torch.Tensor:
        """Captions -> float32 features, each caption computed at its own token count (captions
        of one length batched together): padding to a batch's longest caption changes a
        feature in the last bits, and the live teacher's caption cache and a reinforced store
        batch different captions together; this way they agree bit for bit."""
        tokens = encoding.tokens(self.model.text_tower, texts)
        lengths = _token_counts(tokens)
        if lengths is None:  # no right-padded attention mask to group by: the tokeniser's batch as it is
            return _features(self.model.text_tower, self.model.text_head, tokens, device)
        out: torch.Tensor | None = None
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            feats = _features(self.model.text_tower, self.model.text_head,
                              {k: v[rows, :length] for k, v in tokens.items()}, device)
            out = feats.new_empty(len(texts), feats.shape[-1]) if out is None else out
            out[rows.to(out.device)] = feats
        return out


def _rows(inputs: Any) -> int | None:
    """The batch size of a tensor or of a tokeniser's dict of tensors (None: unknown)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.shape[0]
    if isinstance(inputs, Mapping) and inputs and all(isinstance(v, torch.Tensor) for v in inputs.values()):
        return next(iter(inputs.values())).shape[0]
    return None


def _repeat_first(inputs: Any, extra: int) -> Any:
    def pad(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x[:1].expand(extra, *x.shape[1:])])
    return pad(inputs) if isinstance(inputs, torch.Tensor) else {k: pad(v) for k, v in inputs.items()}


def _features(tower: nn.Module, head: nn.Module | None, inputs: Any, device: torch.device | None) -> torch.Tensor:
    """Features of ``inputs`` computed in a batch of at least MIN_ROWS rows, so one image or
    caption encoded alone gets the feature it gets among many."""
    rows = _rows(inputs)
    padded = _repeat_first(inputs, MIN_ROWS - rows) if rows is not None and rows < MIN_ROWS else inputs
    return encoding.features(tower, head, padded, device)[:rows].float()


def _token_counts(tokens: Any) -> torch.Tensor | None:
    """Each caption's token count, from a right-padded tokeniser's attention mask (None: no mask,
    or padding on the left)."""
    mask = tokens.get("attention_mask") if isinstance(tokens, Mapping) else None
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        return None
    counts = mask.sum(dim=1)
    if not torch.equal(mask, (torch.arange(mask.shape[1]) < counts[:, None]).to(mask.dtype)):
        return None  # not right-padded: keep the tokeniser's batch as it is
    return counts


def _run_scale(bundle: nn.Module) -> float | None:
    """The logit scale σ of a run's contrastive loss (a loss offering ``scale()``, e.g. InfoNCE)."""
    for loss in bundle.losses.values():
        scale = getattr(loss, "scale", None)
        if callable(scale):
            return float(scale().detach())
    return None


def _from_run(path: Path) -> tuple[nn.Module, float | None]:
    from .._model import loader
    if (path / loader.EXPORT_INFO).is_file():
        loaded = loader.load(path)
        return loaded.model, loader.export_info(path).get("logit_scale")
    from . import checkpoint
    from .restore import load_run
    restored = load_run(path)
    checkpoint.release(restored.checkpoint)
    return restored.bundle.model, _run_scale(restored.bundle)


def _from_towers(spec: str, pretrained: str | None, cache_dir: str | None) -> tuple[nn.Module, float | None]:
    from .. import api
    from .._model.model import DualEncoder
    specs = spec.split("+") if "+" in spec else [spec, spec]
    weights = (pretrained or "").split("+") if pretrained and "+" in spec else [pretrained, pretrained]
    if len(specs) != 2 or len(weights) != 2:
        raise UsageError(f"--teacher-model '{spec}': give one family:model or IMAGE_SPEC+TEXT_SPEC "
                         "(and --teacher-pretrained A+B for two specs)")
    from .._model.sharing import sharing
    from .._model.pretrained_flag import pretrained_named_by
    with torch.random.fork_rng(devices=[]), sharing(), pretrained_named_by("--teacher-pretrained"):
        # (the student's init is left alone; a family's error names --teacher-pretrained)
        towers = [api.build_backbone(s, modality=side, pretrained=w, **api.with_cache_dir(s, {}, cache_dir))
                  for s, side, w in zip(specs, ("image", "text"), weights)]
    scales = [getattr(t, "logit_scale", None) for t in towers]
    scale = next((float(s) for s in scales if s is not None), None)
    return DualEncoder(*towers), scale


def build_teacher_model(cfg: Any) -> TeacherModel | None:
    """The ``--teacher-model`` of ``cfg``, locked, or None."""
    spec = cfg.teacher_model
    if not spec:
        return None
    path = Path(spec).expanduser()
    if path.exists():
        if cfg.teacher_pretrained:
            raise UsageError("--teacher-pretrained is for a teacher given as towers; a run or export "
                             "carries its own weights")
        model, scale = _from_run(path)
    else:
        model, scale = _from_towers(spec, cfg.teacher_pretrained, cfg.cache_dir)
    if scale is None or not math.isfinite(scale):
        notice(f"--teacher-model {spec}: no logit scale of its own; its similarities use σ = {DEFAULT_SCALE:g}")
        scale = DEFAULT_SCALE
    return TeacherModel(model, scale, spec)
