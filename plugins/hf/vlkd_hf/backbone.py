"""``hf:<hub id or directory>``: Hugging Face text / image towers."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from vlkd_core.errors import UsageError
from vlkd_core.sdk import apply_freeze, pretrained_flag

from .pooling import POOLERS
from .promptbert import DEFAULT_TEMPLATE
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


def load_tower_file(tower: nn.Module, path: str) -> bool:
    """Load a tower state dict saved with ``torch.save(tower.state_dict())`` / safetensors.
    A tower saved without learnable prompts may get new ones; returns whether prompts were loaded."""
    from vlkd_core.sdk import load_state_dict_file
    state = load_state_dict_file(Path(path).expanduser())
    try:
        missing, unexpected = tower.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise UsageError(f"{pretrained_flag()} '{path}' does not fit this model: "
                         f"{str(exc).splitlines()[-1].strip()}") from None
    missing = [key for key in missing if not key.startswith("prompt.")]
    if missing or unexpected:
        bad = (missing or unexpected)[0]
        raise UsageError(f"{pretrained_flag()} '{path}' does not fit this model: "
                         f"{'missing' if missing else 'unexpected'} key '{bad}'")
    return any(key.startswith("prompt.") for key in state)


def _check_text_options(modality: str, source: Source, pooler: str | None, prompts: bool,
                        prompt_template: str | None) -> None:
    """Text-only options on an image tower, or options that cannot combine, are errors."""
    if modality != "text" and (prompts or pooler == "promptbert"):
        raise UsageError("hf: pooler=promptbert, prompt_tokens and prompt_init are text-tower options")
    if prompt_template is not None and pooler != "promptbert":
        raise UsageError("hf: prompt_template is an option of pooler=promptbert")
    if prompts and pooler == "promptbert":
        raise UsageError("hf: prompt_tokens / prompt_init cannot be combined with pooler=promptbert")
    if prompts and pooler is None and source.is_sentence_transformers:
        raise UsageError("hf: prompt_tokens on a sentence-transformers folder needs an explicit "
                         "pooler (e.g. pooler=mean, its usual pooling) to use the transformers model")


def build_hf_backbone(model: str, modality: str = "text", pretrained: str | None = None,
                      pooler: str | None = None, max_seq_length: int | None = None,
                      normalize: bool = False, adapter: str | None = None,
                      adapter_config: dict | None = None,
                      image_size: int | None = None, cache_dir: str | None = None,
                      prompt_tokens: int = 0, prompt_init: str | None = None,
                      prompt_template: str | None = None, template_denoise: bool = True) -> nn.Module:
    """A Hugging Face model (hub id or local directory) as a text or image tower.

    Text: sentence-transformers folders (with ``modules.json``) use their own pooling and
    normalisation; other models use ``pooler`` = cls | cls-before-pooler | mean | max |
    promptbert (PromptBERT: the [MASK] state of ``prompt_template``, minus the template bias
    unless ``template_denoise`` is false). prompt_tokens: CoOp's N learnable context vectors
    after the first token (prompt_init: from a phrase's embeddings); they stay trainable when
    the engine locks the tower. Image: vision models with their AutoImageProcessor
    (``image_size`` resizes, interpolating ViT position embeddings). pretrained: a local file
    holding a saved tower state dict or a directory to load with ``from_pretrained`` instead of
    ``model``. adapter: lora | bottleneck | prefix_tuning | ia3 | compacter | mam | unipelt
    (``adapters`` library; only adapter weights train); adapter_config overrides its fields.
    Locking is the engine's (``--lock-*``, ``--unlock``). Offline, the hub cache and packaged
    copies are used."""
    if pooler is not None and pooler not in POOLERS:
        raise UsageError(f"pooler '{pooler}' must be one of {', '.join(POOLERS)}")
    if prompt_tokens < 0:
        raise UsageError(f"hf option prompt_tokens={prompt_tokens} must be >= 0")
    if pretrained is not None and Path(pretrained).expanduser().is_dir():
        model, pretrained = pretrained, None  # a fine-tuned copy of the model in a directory
    source = resolve_source(model, cache_dir)
    prompts = bool(prompt_tokens or prompt_init is not None)
    _check_text_options(modality, source, pooler, prompts, prompt_template)
    if modality == "text":
        tower = build_text_tower(model, source, pooler, max_seq_length, normalize, cache_dir)
        if pooler == "promptbert":
            tower.use_promptbert(prompt_template or DEFAULT_TEMPLATE, template_denoise)
    else:
        tower = build_image_tower(model, source, pooler, image_size, cache_dir)
    tower.source = source.origin
    if adapter:
        from .peft import add_adapter
        add_adapter(_peft_target(tower), adapter, adapter_config)
        apply_freeze(tower)  # marks the frozen base model (kept in eval mode while adapters train)
    if prompts:
        tower.add_prompt(prompt_tokens, prompt_init)
    if pretrained is not None and not load_tower_file(tower, pretrained) and prompts:
        tower.add_prompt(prompt_tokens, prompt_init)  # a phrase's embeddings from the loaded weights
    return tower
