"""Inputs to features through one tower and its head: the engine's one encode path.

    images  PIL images, or [3, H, W] / [B, 3, H, W] tensors already through the eval transform
            -> image_transform(tower) -> batches -> tower -> head
    texts   strings -> tokens(tower, texts) -> tower -> head

:func:`encode_images` / :func:`encode_texts` do all of it in eval mode without autograd (every
module's own mode restored after) and return float32 ``[N, D]`` features, L2-normalised unless
``normalize=False``: ``DualEncoder.encode_images/encode_texts`` (what evaluators call) and
``vlkd.load``'s :class:`~vlkd_core._model.loaded_model.LoadedModel`. Paths that batch their own inputs
use the pieces: the evaluators' DataLoader (:func:`image_transform` in its workers,
:func:`features` per batch), the feature store (:func:`features` on its batches, no head),
training's step (``Bundle._encode``: :func:`tokens` and :func:`forward` in the bundle's mode,
locked towers through :func:`features` or the feature cache), and episodes (that step's
encoding inside :func:`evaluating`).
"""
from __future__ import annotations

import functools
import itertools
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .abilities import HasImageSpec


def to_device(inputs: Any, device: torch.device | None) -> Any:
    """Move a tensor, or a dict of tensors (HF tokenizers), to ``device`` (None: leave it)."""
    if device is None:
        return inputs
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict) or hasattr(inputs, "items"):
        return {k: to_device(v, device) for k, v in inputs.items()}
    return inputs


def device_of(*modules: nn.Module | None) -> torch.device:
    """Where the first parameter (or buffer) of ``modules`` lives; CPU when they hold none."""
    for module in modules:
        if module is not None:
            for tensor in itertools.chain(module.parameters(), module.buffers()):
                return tensor.device
    return torch.device("cpu")


# -- inputs ------------------------------------------------------------------------------------
def image_transform(tower: nn.Module) -> Callable[[Any], torch.Tensor]:
    """An image tower's eval transform, PIL -> [3, H, W]: the core's transform of its
    ``image_spec`` (the one training's ``--augment none`` uses; picklable, so DataLoader workers
    can run it), else the tower's own ``preprocess(train=False)``."""
    if isinstance(tower, HasImageSpec):
        from .images import eval_transform
        return eval_transform(tower.image_spec)
    return functools.partial(tower.preprocess, train=False)


def image_batches(images: Any, batch_size: int, transform: Callable) -> Iterator[torch.Tensor]:
    """[B, 3, H, W] batches of at most ``batch_size``: a tensor batch split; one image, or a
    list of PIL images and [3, H, W] tensors, stacked with PIL ones through ``transform``."""
    if isinstance(images, torch.Tensor):
        yield from (images.unsqueeze(0) if images.dim() == 3 else images).split(batch_size)
        return
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    for start in range(0, len(items), batch_size):
        yield image_batch(items[start:start + batch_size], transform)


def image_batch(images: Sequence[Any], transform: Callable) -> torch.Tensor:
    """One batch: PIL images through ``transform``, tensors as they are, stacked."""
    return torch.stack([im if isinstance(im, torch.Tensor) else transform(im) for im in images])


def tokens(tower: nn.Module, texts: Sequence[str], train: bool = False) -> Any:
    """Strings -> the text tower's input (a token tensor, or a dict of tensors)."""
    return tower.preprocess(list(texts), train=train)


def text_batches(texts: Sequence[str] | str, batch_size: int) -> Iterator[list[str]]:
    items = [texts] if isinstance(texts, str) else list(texts)
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]


# -- running -----------------------------------------------------------------------------------
def forward(tower: nn.Module, head: nn.Module | None, inputs: Any,
            device: torch.device | None = None) -> torch.Tensor:
    """``head(tower(inputs))`` (no head: the tower's output) in the modules' current mode and
    the caller's grad mode, as training's step runs it."""
    out = tower(to_device(inputs, device))
    return out if head is None else head(out)


@contextmanager
def evaluating(*modules: nn.Module | None) -> Iterator[None]:
    """Eval mode for ``modules``; afterwards every submodule gets its own mode back (a locked
    tower inside a training bundle stays in eval mode, which ``train(True)`` would undo)."""
    present = [m for m in modules if m is not None]
    modes = [(sub, sub.training) for module in present for sub in module.modules()]
    for module in present:
        module.eval()
    try:
        yield
    finally:
        for sub, mode in modes:
            sub.training = mode


def features(tower: nn.Module, head: nn.Module | None, inputs: Any,
             device: torch.device | None = None) -> torch.Tensor:
    """One batch of inputs -> features, in eval mode without autograd (``inference_mode``),
    returned as an ordinary tensor of the tower's dtype, which a caller may train on."""
    with evaluating(tower, head), torch.inference_mode():
        out = forward(tower, head, inputs, device)
    return out.clone()


def _encode(tower: nn.Module, head: nn.Module | None, batches: Iterable[Any], normalize: bool,
            device: torch.device | None, out: torch.device | None) -> torch.Tensor:
    device = device if device is not None else device_of(tower, head)
    out = out if out is not None else device
    parts = []
    with evaluating(tower, head), torch.inference_mode():
        for inputs in batches:
            parts.append(forward(tower, head, inputs, device).float().to(out))
    feats = torch.cat(parts) if parts else torch.empty(0, 0, device=out)  # an ordinary tensor again
    return F.normalize(feats, dim=-1) if normalize and feats.numel() else feats


def encode_images(tower: nn.Module, head: nn.Module | None, images: Any, batch_size: int = 64,
                  normalize: bool = True, device: torch.device | None = None,
                  out: torch.device | None = None) -> torch.Tensor:
    """PIL images (a list, or one) or preprocessed tensors -> [N, D] float32 features, computed
    on ``device`` (default: the tower's) and returned on ``out`` (default: ``device``)."""
    batches = image_batches(images, batch_size, image_transform(tower))
    return _encode(tower, head, batches, normalize, device, out)


def encode_texts(tower: nn.Module, head: nn.Module | None, texts: Sequence[str] | str,
                 batch_size: int = 256, normalize: bool = True, device: torch.device | None = None,
                 out: torch.device | None = None) -> torch.Tensor:
    """Strings (a list, or one) -> [N, D] float32 features (see :func:`encode_images`)."""
    batches = (tokens(tower, chunk) for chunk in text_batches(texts, batch_size))
    return _encode(tower, head, batches, normalize, device, out)
