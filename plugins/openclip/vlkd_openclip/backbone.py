"""``openclip:<name>``: one tower of an OpenCLIP model, built by open_clip itself."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.freeze import apply_freeze

from vlkd_core.hub import hub_offline_when_unreachable
from .towers import OpenCLIPImageTower, OpenCLIPTextTower

SCHEMAS = ("hf-hub:", "local-dir:")


def _tower_file_state(pretrained: str | None) -> dict | None:
    """A state dict saved from a vlkd openclip tower (keys ``visual.*`` or ``text.*``), else None
    (then the file is a full OpenCLIP checkpoint, handed to open_clip's own loader)."""
    if pretrained is None or not Path(pretrained).expanduser().is_file():
        return None
    from vlkd_core.weights import load_state_dict_file
    state = load_state_dict_file(Path(pretrained).expanduser(), flag="--pretrained")
    prefixes = {key.split(".", 1)[0] for key in state}
    return state if prefixes and prefixes <= {"visual", "text"} and len(prefixes) == 1 else None


def _source(model: str, pretrained: str | None, tower_file: bool) -> tuple[str, str | None]:
    """(open_clip model_name, pretrained) for create_model_and_transforms: ``hf-hub:org/repo``
    and local directories (``local-dir:``) replace the model name; tags and checkpoint files
    stay as ``pretrained``."""
    if model.startswith(SCHEMAS):  # the name already says where config and weights live
        if pretrained is not None and not tower_file:
            raise UsageError(f"openclip:{model} brings its own weights; drop --pretrained '{pretrained}'")
        return model, None
    if pretrained is None or tower_file:
        return model, None
    if pretrained.startswith("hf-hub:"):
        return pretrained, None
    local = Path(pretrained).expanduser()
    if local.is_dir():
        return f"local-dir:{local}", None
    return model, str(local) if local.is_file() else pretrained


def create(model: str, pretrained: str | None, modality: str, image_size: int | None,
           cache_dir: str | None, tower_file: bool):
    import open_clip
    name, weights = _source(model, pretrained, tower_file)
    kwargs: dict = {"cache_dir": str(Path(cache_dir).expanduser()) if cache_dir else None,
                    "force_image_size": image_size,
                    # base HF text weights are only useful for a text tower without CLIP weights
                    "pretrained_text": modality == "text" and weights is None and not tower_file}
    with hub_offline_when_unreachable() as offline:
        try:
            # the transforms are the core's, built from visual.preprocess_cfg (set by create_model)
            clip = open_clip.create_model(name, pretrained=weights, **kwargs)
            tokenizer = open_clip.get_tokenizer(name, cache_dir=kwargs["cache_dir"]) if modality == "text" else None
        except RuntimeError as exc:
            message = str(exc)
            if "not a known tag" in message:
                tags = open_clip.list_pretrained_tags_by_model(model)
                raise UsageError(f"--pretrained '{pretrained}' is neither a file nor an open_clip tag "
                                 f"of {model} (tags: {', '.join(tags) or 'none'})") from None
            if "download" in message.lower() or "HF Hub" in message:
                raise _offline_error(pretrained, offline, exc) from None
            raise
        except (OSError, ConnectionError) as exc:  # tokenizers / configs fetched from the hub
            raise _offline_error(pretrained or name, offline, exc) from None
    return clip, tokenizer


def _offline_error(what: str | None, offline: bool, exc: Exception) -> UsageError:
    reason = "the Hugging Face Hub is unreachable (offline)" if offline else "download failed"
    return UsageError(f"--pretrained {what}: cannot fetch open_clip weights, {reason} "
                      f"({type(exc).__name__}); pre-fill --cache-dir, or pass a local checkpoint "
                      f"file / local directory as --pretrained")


def build_openclip_backbone(model: str, modality: str = "image", pretrained: str | None = None,
                            image_size: int | None = None, cache_dir: str | None = None,
                            lock: bool = False, unlocked_groups: int = 0,
                            freeze_bn_stats: bool = False, unlocked_layers: int = 0,
                            unlock: str | None = None) -> nn.Module:
    """An OpenCLIP image tower (``model.visual``) or text tower (``encode_text``); the other
    half is discarded.

    model: an open_clip config name (``RN50``, ``ViT-B-32``), or ``hf-hub:org/repo`` /
    ``local-dir:/path`` (config and weights together, as open_clip names them).
    pretrained: an open_clip tag (``openai``, ``laion2b_s34b_b79k``), ``hf-hub:org/repo``, a
    local directory with ``open_clip_config.json``, a full OpenCLIP checkpoint file, or a file
    saved from this tower's ``state_dict()``. image_size: forces the vision input size.
    lock: open_clip's own lock — image: ``unlocked_groups`` last groups stay trainable,
    ``freeze_bn_stats`` freezes BatchNorm; text: ``unlocked_layers`` last layers stay
    trainable. unlock: name patterns re-enabled afterwards (``vlkd_core.freeze``)."""
    tower_state = _tower_file_state(pretrained)
    clip, tokenizer = create(
        model, pretrained, modality, image_size, cache_dir, tower_state is not None)
    if modality == "image":
        tower: nn.Module = OpenCLIPImageTower(clip.visual)
    else:
        tower = OpenCLIPTextTower(clip, tokenizer)
    del clip
    if tower_state is not None:
        try:
            tower.load_state_dict(tower_state)
        except RuntimeError as exc:
            raise UsageError(f"--pretrained '{pretrained}' does not fit openclip:{model} "
                             f"{modality} tower: {str(exc).splitlines()[1].strip()}") from None
    if lock:
        if modality == "image":
            tower.lock_tower(unlocked_groups=unlocked_groups, freeze_bn_stats=freeze_bn_stats)
        else:
            tower.lock_tower(unlocked_layers=unlocked_layers)
    return apply_freeze(tower, unlock=unlock)  # also marks locked parts for keep_frozen_in_eval
