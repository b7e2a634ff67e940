"""``timm:<name>``: a timm model built with ``num_classes=0`` (pooled pre-logits features)."""
from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.data import resolve_data_config
from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.sdk import ImagePreprocess, ImageSpec, interpolation_mode

from vlkd_core.sdk import hub_offline_when_unreachable, pretrained_flag
from .weights import load_weights_into

DEFAULT_TAGS = ("default", "true", "yes", "1")


def spec_from_data_config(config: dict) -> ImageSpec:
    return ImageSpec(int(config["input_size"][-1]), tuple(config["mean"]), tuple(config["std"]),
                     interpolation_mode(config.get("interpolation")))


class TimmTower(nn.Module):
    """Image tower around a headless timm model; side, normalisation and filter from timm's
    data config (the transforms are the core's, without timm's ``crop_pct`` border cut)."""

    modality = "image"

    def __init__(self, model: nn.Module, output_dim: int, data_config: dict, name: str):
        super().__init__()
        self.model, self.output_dim, self.name = model, output_dim, name
        self.data_config = dict(data_config)
        self.image_spec = spec_from_data_config(data_config)
        self._preprocess = ImagePreprocess(self.image_spec)

    def preprocess(self, image, train: bool = False) -> torch.Tensor:
        return self._preprocess(image, train)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """--grad-checkpointing: timm's own (blocks recompute activations in backward)."""
        self.model.set_grad_checkpointing(enable)

    # --layer-decay depth from timm's own fine-grained group matcher (as timm's
    # param_groups_layer_decay): stem 0, one id per block, head/norm the top; None without one
    def _layer_map(self) -> dict[str, int] | None:
        if "_vlkd_layer_map" not in self.__dict__:
            matcher = getattr(self.model, "group_matcher", None)
            if matcher is None:
                self.__dict__["_vlkd_layer_map"] = None
            else:
                from timm.models import group_parameters
                self.__dict__["_vlkd_layer_map"] = group_parameters(self.model, matcher(coarse=False), reverse=True)
        return self.__dict__["_vlkd_layer_map"]

    @property
    def num_layers(self) -> int | None:
        layers = self._layer_map()
        return max(layers.values()) if layers else None

    def layer_id(self, name: str) -> int:
        return self._layer_map()[name.removeprefix("model.")]

    def blocks(self) -> list[str]:
        """The modules of depth 1 .. num_layers - 1 in depth order: for each depth, the module
        holding all of its parameters (timm's fine-grained groups are whole blocks)."""
        layers = self._layer_map() or {}
        by_depth: dict[int, list[list[str]]] = {}
        for name, depth in layers.items():
            if 0 < depth < max(layers.values()):
                by_depth.setdefault(depth, []).append(name.split(".")[:-1])
        names = []
        for depth in sorted(by_depth):
            paths = by_depth[depth]
            common = [part for part, *rest in zip(*paths) if all(r == part for r in rest)]
            names.append("model." + ".".join(common))
        return names


def _is_local(pretrained: str | None) -> bool:
    return pretrained is not None and Path(pretrained).expanduser().exists()


WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def _names_a_file(pretrained: str) -> bool:
    """A path, not a tag: timm tags (``a1_in1k``) have no slash and no weights suffix. Taken
    for a tag, a missing file became the model name ``model./path`` (timm's ValueError)."""
    return "/" in pretrained or pretrained.startswith(("~", ".")) or pretrained.lower().endswith(WEIGHT_SUFFIXES)


def create(model: str, pretrained: str | None, image_size: int | None, cache_dir: str | None,
           num_classes: int = 0) -> nn.Module:
    """``timm.create_model`` with a tag (``default`` or e.g. ``a1_in1k``) or no weights.
    ``image_size`` is passed as ``img_size`` to models that take it (ViTs resample their
    position embeddings)."""
    name, use_hub = model, False
    if pretrained is not None and not _is_local(pretrained):
        use_hub = True
        if pretrained.startswith("hf-hub:"):  # e.g. hf-hub:timm/resnet18.a1_in1k
            name = pretrained
        elif _names_a_file(pretrained):
            raise UsageError(f"{pretrained_flag()}: weights file '{pretrained}' does not exist")
        elif pretrained.lower() not in DEFAULT_TAGS:
            name = f"{model}.{pretrained}"
    kwargs: dict = {"num_classes": num_classes}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(Path(cache_dir).expanduser())
    try:
        with hub_offline_when_unreachable() as offline:
            try:
                return timm.create_model(name, pretrained=use_hub, img_size=image_size, **kwargs) \
                    if image_size else timm.create_model(name, pretrained=use_hub, **kwargs)
            except TypeError as exc:  # this architecture has no img_size argument
                if "img_size" not in str(exc):
                    raise
                return timm.create_model(name, pretrained=use_hub, **kwargs)
    except (OSError, ConnectionError) as exc:  # first: hub errors are also ValueErrors
        if not use_hub:
            raise
        where = "offline" if offline else "download failed"
        raise UsageError(f"{pretrained_flag()} {pretrained}: cannot fetch timm weights for {name} "
                         f"({where}: {type(exc).__name__}); pre-fill --cache-dir or pass a local "
                         f"weights file as {pretrained_flag()}") from None
    except (RuntimeError, ValueError) as exc:
        if any(sign in str(exc) for sign in ("Unknown model", "Invalid pretrained tag",
                                              "no source prefix")):  # the last: a tag timm reads as a path
            tags = [t.split(".", 1)[1] for t in timm.list_pretrained(f"{model}.*")]
            raise UsageError(f"{pretrained_flag()} '{pretrained}' is not a timm tag of {model} "
                             f"(tags: {', '.join(tags) or 'none'}) nor a local file") from None
        raise


@torch.no_grad()
def measure_output_dim(model: nn.Module, input_size: tuple[int, int, int], name: str) -> int:
    was_training = model.training
    model.eval()
    try:
        out = model(torch.zeros(1, *input_size))
    except RuntimeError as exc:
        raise UsageError(f"timm:{name} cannot run at input size {input_size} "
                         f"({str(exc).splitlines()[0]}); choose another --image-size") from None
    finally:
        model.train(was_training)
    return int(out.shape[-1])


def build_timm_backbone(model: str, modality: str = "image", pretrained: str | None = None,
                        image_size: int | None = None, cache_dir: str | None = None) -> TimmTower:
    """A timm model as an image tower returning pooled features (``num_classes=0``).

    pretrained: ``default`` (timm's default tag), a tag such as ``a1_in1k``, ``hf-hub:org/repo``,
    or a local file
    (timm checkpoint, saved tower, or another implementation's checkpoint mapped tensor by
    tensor). image_size: input resolution (default: the model's). cache_dir: HF hub cache.
    Locking is the engine's (``--lock-image``, ``--unlock``), not an option here."""
    if modality != "image":
        raise UsageError(f"timm:{model} is an image backbone; it cannot be the {modality} tower")
    net = create(model, pretrained, image_size, cache_dir)
    if _is_local(pretrained):
        load_weights_into(net, pretrained)
    config = resolve_data_config({}, model=net)
    if image_size is not None:
        config["input_size"] = (3, image_size, image_size)
    output_dim = measure_output_dim(net, config["input_size"], model)
    return TimmTower(net, output_dim, config, model)
