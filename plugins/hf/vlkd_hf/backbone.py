"""``hf:<hub id or directory>``: Hugging Face text / image towers."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.freeze import apply_freeze

from .pooling import POOLERS
from .source import Source, resolve_source


def _load_kwargs(source: Source, cache_dir: str | None) -> dict:
    kwargs: dict = {"local_files_only": source.local_files_only}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(Path(cache_dir).expanduser())
    return kwargs


def _wrap_load_error(name: str, what: str, exc: Exception) -> UsageError:
    return UsageError(f"hf:{name}: cannot load the {what} ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''})")


def _split_composite(model: nn.Module, modality: str) -> tuple[nn.Module, nn.Module | None]:
    """CLIP-like models hold both towers: keep the requested one (and its projection) only."""
    sub, proj = ("vision_model", "visual_projection") if modality == "image" else ("text_model", "text_projection")
    if hasattr(model, sub):
        return getattr(model, sub), getattr(model, proj, None)
    return model, None


def build_text_tower(name: str, source: Source, pooler: str | None, max_seq_length: int | None,
                     normalize: bool, cache_dir: str | None) -> nn.Module:
    if source.is_sentence_transformers and pooler is None:
        from sentence_transformers import SentenceTransformer
        from .text import SentenceTransformerTower
        try:
            st = SentenceTransformer(source.path, device="cpu", cache_folder=cache_dir,
                                     local_files_only=source.local_files_only)
        except Exception as exc:
            raise _wrap_load_error(name, "sentence-transformers model", exc) from None
        return SentenceTransformerTower(st, max_seq_length)
    from transformers import AutoModel, AutoTokenizer
    from .text import HFTextTower
    kwargs = _load_kwargs(source, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, **kwargs)
    except Exception as exc:
        raise _wrap_load_error(name, "tokenizer (is this a text model?)", exc) from None
    try:
        model = AutoModel.from_pretrained(source.path, **kwargs)
    except Exception as exc:
        raise _wrap_load_error(name, "model", exc) from None
    model, projection = _split_composite(model, "text")
    return HFTextTower(model, tokenizer, pooler or "cls", max_seq_length, normalize, projection)


def build_image_tower(name: str, source: Source, pooler: str | None, image_size: int | None,
                      cache_dir: str | None) -> nn.Module:
    from transformers import AutoImageProcessor, AutoModel
    from .vision import HFImageTower
    kwargs = _load_kwargs(source, cache_dir)
    try:
        processor = AutoImageProcessor.from_pretrained(source.path, **kwargs)
    except Exception as exc:
        raise _wrap_load_error(name, "image processor (is this a vision model?)", exc) from None
    try:
        model = AutoModel.from_pretrained(source.path, **kwargs)
    except Exception as exc:
        raise _wrap_load_error(name, "model", exc) from None
    model, projection = _split_composite(model, "image")
    native = getattr(getattr(model, "config", None), "image_size", None)
    interpolate = image_size is not None and native is not None and image_size != native
    return HFImageTower(model, processor, pooler or "cls", projection, image_size, interpolate)


def _peft_target(tower: nn.Module) -> nn.Module:
    return tower.transformer if hasattr(tower, "transformer") else tower.model


def load_tower_file(tower: nn.Module, path: str) -> None:
    """Load a tower state dict saved with ``torch.save(tower.state_dict())`` / safetensors."""
    from vlkd_core.weights import load_state_dict_file
    state = load_state_dict_file(Path(path).expanduser(), flag="--pretrained")
    try:
        missing, unexpected = tower.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise UsageError(f"--pretrained '{path}' does not fit this model: "
                         f"{str(exc).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        bad = (missing or unexpected)[0]
        raise UsageError(f"--pretrained '{path}' does not fit this model: "
                         f"{'missing' if missing else 'unexpected'} key '{bad}'")


def build_hf_backbone(model: str, modality: str = "text", pretrained: str | None = None,
                      pooler: str | None = None, max_seq_length: int | None = None,
                      normalize: bool = False, adapter: str | None = None,
                      adapter_config: dict | None = None,
                      image_size: int | None = None, cache_dir: str | None = None,
                      lock: bool = False, unlock: str | None = None) -> nn.Module:
    """A Hugging Face model (hub id or local directory) as a text or image tower.

    Text: sentence-transformers folders (with ``modules.json``) use their own pooling and
    normalisation; other models use ``pooler`` = cls | cls-before-pooler | mean | max.
    Image: vision models with their AutoImageProcessor (``image_size`` resizes, interpolating
    ViT position embeddings). pretrained: a local file holding a saved tower state dict
    or a directory to load with ``from_pretrained`` instead of ``model``. adapter: lora | bottleneck |
    prefix_tuning | ia3 | compacter | mam | unipelt (``adapters`` library; only adapter
    weights train); adapter_config overrides its fields. Offline, the hub cache and packaged copies are used."""
    if pooler is not None and pooler not in POOLERS:
        raise UsageError(f"pooler '{pooler}' must be one of {', '.join(POOLERS)}")
    if pretrained is not None and Path(pretrained).expanduser().is_dir():
        model, pretrained = pretrained, None  # a fine-tuned copy of the model in a directory
    source = resolve_source(model, cache_dir)
    if modality == "text":
        tower = build_text_tower(model, source, pooler, max_seq_length, normalize, cache_dir)
    else:
        tower = build_image_tower(model, source, pooler, image_size, cache_dir)
    tower.source = source.origin
    if adapter:
        from .peft import add_adapter
        add_adapter(_peft_target(tower), adapter, adapter_config)
    if pretrained is not None:
        load_tower_file(tower, pretrained)
    return apply_freeze(tower, lock=lock, unlock=unlock)
