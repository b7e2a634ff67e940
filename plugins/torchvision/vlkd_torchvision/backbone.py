"""``torchvision:<name>``: a torchvision classification model without its classifier."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torchvision
from torch import nn

from vlkd_core.sdk import DepthFromBlocks
from vlkd_core.errors import UsageError

from vlkd_core.sdk import ImagePreprocess, ImageSpec, pretrained_flag

from .transforms import spec_from_weights

AUX_MODULES = ("AuxLogits", "aux1", "aux2")  # inception_v3 / googlenet auxiliary classifiers


class TorchvisionTower(DepthFromBlocks, nn.Module):
    """Image tower: ``model`` with its final classification layer replaced by Identity, so
    ``forward`` returns the pooled (pre-logits) features ``[B, output_dim]``."""

    modality = "image"
    # --layer-decay depth: ResNet/ResNeXt bottlenecks, ViT encoder layers, or the stages of
    # models built as a ``features`` Sequential (VGG, MobileNet, EfficientNet, ConvNeXt)
    DEPTH_PATTERNS = (
        (r"model\.layer\d+\.\d+", r"model\.(conv1|bn1)\."),
        (r"model\.encoder\.layers\.encoder_layer_\d+", r"model\.(conv_proj|class_token|encoder\.pos_embedding)"),
        (r"model\.features\.\d+", r"(?!)"))

    def __init__(self, model: nn.Module, output_dim: int, image_spec: ImageSpec, name: str):
        super().__init__()
        self.model, self.output_dim, self.name = model, output_dim, name
        self.image_spec = image_spec
        self._preprocess = ImagePreprocess(image_spec)

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return self._preprocess(image, train)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def resolve_weights(model: str, pretrained: str | None):
    """``DEFAULT`` / ``IMAGENET1K_V1`` / ``ResNet18_Weights.IMAGENET1K_V1`` -> weights enum;
    an existing path -> None (loaded later); None -> None."""
    if pretrained is None or Path(pretrained).expanduser().exists():
        return None
    enum = torchvision.models.get_model_weights(model)
    tag = pretrained.split(".")[-1] if pretrained.startswith(enum.__name__ + ".") else pretrained
    members = list(enum.__members__)
    if tag not in members:
        raise UsageError(f"{pretrained_flag()} '{pretrained}' is neither a file nor a weights tag of "
                         f"torchvision:{model} (tags: {', '.join(members)})")
    return enum[tag]


@contextlib.contextmanager
def hub_dir(cache_dir: str | None):
    """Temporarily point torch.hub (where torchvision stores weights) at ``cache_dir``."""
    if cache_dir is None:
        yield
        return
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(Path(cache_dir).expanduser()))
    try:
        yield
    finally:
        torch.hub.set_dir(previous)


def _builder_kwargs(model: str, weights, image_size: int | None) -> dict:
    """ViT and MaxViT build their position grids for one input size: pass it when untrained
    (with weights the size is fixed by the checkpoint)."""
    if image_size is None or weights is not None:
        return {}
    if model.startswith("vit_"):
        return {"image_size": image_size}
    if model.startswith("maxvit"):
        return {"input_size": (image_size, image_size)}
    return {}


def build_model(model: str, weights, cache_dir: str | None, image_size: int | None) -> nn.Module:
    kwargs = _builder_kwargs(model, weights, image_size)
    try:
        with hub_dir(cache_dir):
            return torchvision.models.get_model(model, weights=weights, **kwargs)
    except ValueError as exc:  # e.g. MaxViT: input size not divisible by its partition size
        raise UsageError(f"torchvision:{model}: {str(exc).splitlines()[0]} (check --image-size)") from None
    except (OSError, RuntimeError) as exc:
        if weights is None or not _is_download_error(exc):
            raise
        raise UsageError(f"{pretrained_flag()} {weights}: cannot download torchvision weights ({exc}); "
                         f"put the file in --cache-dir (torch.hub layout: <cache-dir>/checkpoints/) "
                         f"or pass a local weights file as {pretrained_flag()}") from None


def _is_download_error(exc: Exception) -> bool:
    import urllib.error
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError)) or \
        "urlopen" in str(exc) or "Name or service" in str(exc)


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def remove_classifier(model: nn.Module, num_classes: int) -> str:
    """Replace the last Linear (or 1x1 Conv2d, SqueezeNet) producing ``num_classes`` outputs
    with Identity; returns its name. Generic over resnet ``fc``, vgg/convnext/efficientnet/
    mobilenet ``classifier[-1]``, vit ``heads.head``, swin ``head``, maxvit, squeezenet, ..."""
    for name in AUX_MODULES:  # auxiliary heads only exist for training the classifier
        if getattr(model, name, None) is not None:
            setattr(model, name, None)
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
    last = None
    for name, module in model.named_modules():
        out = getattr(module, "out_features", None) or getattr(module, "out_channels", None)
        if isinstance(module, (nn.Linear, nn.Conv2d)) and out == num_classes:
            last = name
    if last is None:
        raise UsageError(f"cannot find the classification layer ({num_classes} outputs) of "
                         f"{type(model).__name__}")
    _set_submodule(model, last, nn.Identity())
    return last


@torch.no_grad()
def measure_output_dim(model: nn.Module, image_size: int, name: str) -> int:
    was_training = model.training
    model.eval()
    try:
        out = model(torch.zeros(1, 3, image_size, image_size))
    except RuntimeError as exc:
        raise UsageError(f"torchvision:{name} cannot run at image_size {image_size} "
                         f"({str(exc).splitlines()[0]}); choose a larger --image-size") from None
    finally:
        model.train(was_training)
    if out.dim() != 2:
        raise UsageError(f"torchvision:{name} gives features of shape {tuple(out.shape)}, not [B, D]")
    return int(out.shape[1])


def load_local_weights(model: nn.Module, path: str, classifier: str) -> None:
    """Load a torchvision checkpoint (with or without its classifier) or a saved tower
    (``model.``-prefixed keys); every backbone tensor must be present."""
    from vlkd_core.sdk import load_state_dict_file
    state = load_state_dict_file(Path(path).expanduser())
    if state and all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches are raised even when not strict
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise UsageError(f"{pretrained_flag()} '{path}' does not fit this model: {detail}") from None
    stray = [k for k in unexpected if not k.startswith(classifier + ".") and k.split(".")[0] not in AUX_MODULES]
    if missing or stray:
        bad = (missing or stray)[0]
        raise UsageError(f"{pretrained_flag()} '{path}' does not fit this model: "
                         f"{'missing' if missing else 'unexpected'} key '{bad}' "
                         f"({len(missing)} missing, {len(stray)} unexpected)")


def build_torchvision_backbone(model: str, modality: str = "image", pretrained: str | None = None,
                               image_size: int | None = None, cache_dir: str | None = None) -> TorchvisionTower:
    """A torchvision classification model as an image tower returning pooled features.

    pretrained: a weights tag (``DEFAULT``, ``IMAGENET1K_V1``, ``ResNet50_Weights.IMAGENET1K_V2``)
    or a local state-dict file. image_size: eval crop size (default: the weights' own).
    cache_dir: torch.hub directory for downloads. Locking is the engine's (``--lock-image``,
    ``--unlock``), not an option here."""
    if modality != "image":
        raise UsageError(f"torchvision:{model} is an image backbone; it cannot be the {modality} tower")
    weights = resolve_weights(model, pretrained)
    net = build_model(model, weights, cache_dir, image_size)
    num_classes = len(weights.meta["categories"]) if weights is not None else 1000
    classifier = remove_classifier(net, num_classes)
    if pretrained is not None and weights is None:
        load_local_weights(net, pretrained, classifier)
    spec = spec_from_weights(weights, image_size)
    output_dim = measure_output_dim(net, spec.size, model)
    return TorchvisionTower(net, output_dim, spec, model)
