"""``openclip:<name>``: one tower of an OpenCLIP model, built by open_clip itself."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.sdk import hub_offline_when_unreachable, pretrained_flag, shared_build
from .towers import OpenCLIPImageTower, OpenCLIPTextTower

SCHEMAS = ("hf-hub:", "local-dir:")


def _tower_file_state(pretrained: str | None) -> dict | None:
    """A state dict saved from a vlkd openclip tower (keys ``visual.*``, or ``text.*`` and
    ``prompt.*``), else None
    (then the file is a full OpenCLIP checkpoint, handed to open_clip's own loader)."""
    if pretrained is None or not Path(pretrained).expanduser().is_file():
        return None
    from vlkd_core.sdk import load_state_dict_file
    state = load_state_dict_file(Path(pretrained).expanduser())
    prefixes = {key.split(".", 1)[0] for key in state}
    # an image tower's keys, or a text tower's (with its learnable prompt, if any)
    return state if prefixes and (prefixes <= {"visual"} or prefixes <= {"text", "prompt"}) else None


def _source(model: str, pretrained: str | None, tower_file: bool) -> tuple[str, str | None]:
    """(open_clip model_name, pretrained) for create_model_and_transforms: ``hf-hub:org/repo``
    and local directories (``local-dir:``) replace the model name; tags and checkpoint files
    stay as ``pretrained``."""
    if model.startswith(SCHEMAS):  # the name already says where config and weights live
        if pretrained is not None and not tower_file:
            raise UsageError(f"openclip:{model} brings its own weights; drop {pretrained_flag()} '{pretrained}'")
        return model, None
    if pretrained is None or tower_file:
        return model, None
    if pretrained.startswith("hf-hub:"):
        return pretrained, None
    local = Path(pretrained).expanduser()
    if local.is_dir():
        return f"local-dir:{local}", None
    return model, str(local) if local.is_file() else pretrained


class SharedModel:
    """One open_clip model built for a composition: its ``visual`` for one image tower, the rest
    for one text tower (each half handed out once; another tower of a side builds its own)."""

    def __init__(self, clip: nn.Module):
        self.halves: dict[str, nn.Module] = {"image": clip.visual, "text": clip}

    def take(self, modality: str) -> nn.Module | None:
        return self.halves.pop(modality, None)


builds = 0  # open_clip models this process built (the tests count them)


@contextmanager
def _unknown_tag_not_logged() -> Iterator[None]:
    """open_clip logs an unknown tag on the root logger before raising; the raise becomes our
    one-line error naming the tags, so its log line would be a second, rawer copy of it."""
    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Pretrained tag or path")
    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _create_model(name: str, weights: str | None, pretrained: str | None, model: str, kwargs: dict) -> nn.Module:
    import open_clip
    global builds
    with hub_offline_when_unreachable() as offline:
        try:
            # the transforms are the core's, built from visual.preprocess_cfg (set by create_model)
            with _unknown_tag_not_logged():
                clip = open_clip.create_model(name, pretrained=weights, **kwargs)
        except RuntimeError as exc:
            message = str(exc)
            if "not a known tag" in message:
                tags = open_clip.list_pretrained_tags_by_model(model)
                raise UsageError(f"{pretrained_flag()} '{pretrained}' is neither a file nor an open_clip tag "
                                 f"of {model} (tags: {', '.join(tags) or 'none'})") from None
            if "download" in message.lower() or "HF Hub" in message:
                raise _offline_error(pretrained, offline, exc) from None
            raise
        except (OSError, ConnectionError) as exc:  # configs fetched from the hub
            raise _offline_error(pretrained or name, offline, exc) from None
    builds += 1
    return clip


def _tokenizer(name: str, pretrained: str | None, cache_dir: str | None):
    import open_clip
    with hub_offline_when_unreachable() as offline:
        try:
            return open_clip.get_tokenizer(name, cache_dir=cache_dir)
        except (OSError, ConnectionError) as exc:  # tokenizers fetched from the hub
            raise _offline_error(pretrained or name, offline, exc) from None


def _base_text_weights_matter(name: str) -> bool:
    """Whether open_clip's ``pretrained_text`` changes what ``name`` builds: only a Hugging Face
    text tower has base weights of its own (a hub config is not fetched to find out)."""
    import open_clip
    if name.startswith("hf-hub:"):
        return True
    try:
        cfg = open_clip.get_model_config(name)
    except Exception:  # noqa: BLE001 -- unreadable here: create_model will say why
        return True
    return cfg is None or "hf_model_name" in (cfg.get("text_cfg") or {})


def create(model: str, pretrained: str | None, modality: str, image_size: int | None,
           cache_dir: str | None, tower_file: bool) -> tuple[nn.Module, object]:
    """(``modality``'s half of an open_clip model: ``visual``, or the model for the text tower;
    the tokenizer of a text tower). Both towers of one composition asking for the same model
    (name, weights, size, cache) get the halves of one build (``shared_build``)."""
    name, weights = _source(model, pretrained, tower_file)
    kwargs: dict = {"cache_dir": str(Path(cache_dir).expanduser()) if cache_dir else None,
                    "force_image_size": image_size,
                    # base HF text weights are only useful for a text tower without CLIP weights
                    "pretrained_text": modality == "text" and weights is None and not tower_file}
    text_weights = kwargs["pretrained_text"] and _base_text_weights_matter(name)
    key = ("openclip", name, weights, kwargs["cache_dir"], image_size, text_weights)
    shared = shared_build(key, lambda: SharedModel(_create_model(name, weights, pretrained, model, kwargs)))
    half = shared.take(modality)
    if half is None:  # this composition already has a tower of this side from that model
        half = SharedModel(_create_model(name, weights, pretrained, model, kwargs)).take(modality)
    tokenizer = _tokenizer(name, pretrained, kwargs["cache_dir"]) if modality == "text" else None
    return half, tokenizer


def _offline_error(what: str | None, offline: bool, exc: Exception) -> UsageError:
    reason = "the Hugging Face Hub is unreachable (offline)" if offline else "download failed"
    return UsageError(f"{pretrained_flag()} {what}: cannot fetch open_clip weights, {reason} "
                      f"({type(exc).__name__}); pre-fill --cache-dir, or pass a local checkpoint "
                      f"file / local directory as {pretrained_flag()}")


def _check_tower_options(modality: str, image_only: dict, text_only: dict) -> None:
    """An option of the other tower is an error, not silently ignored."""
    wrong = text_only if modality == "image" else image_only
    for name, value in wrong.items():
        if value:
            raise UsageError(f"openclip option '{name}' is for the "
                             f"{'text' if modality == 'image' else 'image'} tower, not the {modality} tower")


def build_openclip_backbone(model: str, modality: str = "image", pretrained: str | None = None,
                            image_size: int | None = None, cache_dir: str | None = None,
                            unlocked_groups: int = 0, freeze_bn_stats: bool = False,
                            unlocked_layers: int = 0, prompt_tokens: int = 0,
                            prompt_init: str | None = None) -> nn.Module:
    """An OpenCLIP image tower (``model.visual``) or text tower (``encode_text``); the other
    half is discarded.

    model: an open_clip config name (``RN50``, ``ViT-B-32``), or ``hf-hub:org/repo`` /
    ``local-dir:/path`` (config and weights together, as open_clip names them).
    pretrained: an open_clip tag (``openai``, ``laion2b_s34b_b79k``), ``hf-hub:org/repo``, a
    local directory with ``open_clip_config.json``, a full OpenCLIP checkpoint file, or a file
    saved from this tower's ``state_dict()``. image_size: forces the vision input size.
    When the engine locks the tower (``--lock-*``, ``--teacher``) it uses open_clip's own lock:
    image: the last ``unlocked_groups`` groups stay trainable, ``freeze_bn_stats`` freezes
    BatchNorm; text: the last ``unlocked_layers`` layers stay trainable.
    prompt_tokens: CoOp's N learnable context vectors after the start token (text; the caption
    gets N fewer tokens); prompt_init: initialise them from a phrase's embeddings (N = its
    token count) instead of random normal (std 0.02). Prompts stay trainable in a locked tower."""
    _check_tower_options(modality, {"unlocked_groups": unlocked_groups, "freeze_bn_stats": freeze_bn_stats},
                         {"unlocked_layers": unlocked_layers, "prompt_tokens": prompt_tokens,
                          "prompt_init": prompt_init})
    if prompt_tokens < 0:
        raise UsageError(f"openclip option prompt_tokens={prompt_tokens} must be >= 0")
    tower_state = _tower_file_state(pretrained)
    half, tokenizer = create(
        model, pretrained, modality, image_size, cache_dir, tower_state is not None)
    if modality == "image":
        tower: nn.Module = OpenCLIPImageTower(half, unlocked_groups, freeze_bn_stats)
    else:
        tower = OpenCLIPTextTower(half, tokenizer, unlocked_layers)
    del half
    prompted = bool(prompt_tokens or prompt_init is not None)
    if prompted:
        tower.add_prompt(prompt_tokens, prompt_init)
    if tower_state is not None:
        _load_tower_state(tower, tower_state, f"{pretrained_flag()} '{pretrained}' does not fit "
                                              f"openclip:{model} {modality} tower")
        if prompted and not any(k.startswith("prompt.") for k in tower_state):
            tower.add_prompt(prompt_tokens, prompt_init)  # a phrase's embeddings from the loaded weights
    return tower


def _load_tower_state(tower: nn.Module, state: dict, what: str) -> None:
    """Strict, except that a tower saved without learnable prompts may get new ones."""
    wanted = tower.state_dict()
    missing = [k for k in wanted if k not in state and not k.startswith("prompt.")]
    unexpected = [k for k in state if k not in wanted]
    if missing or unexpected:
        key = (missing or unexpected)[0]
        raise UsageError(f"{what}: {'missing' if missing else 'unexpected'} key '{key}'")
    try:
        tower.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise UsageError(f"{what}: {str(exc).splitlines()[1].strip()}") from None
