"""Loading state dicts from local files safely (safetensors, or torch.load with weights_only), and
hashing a module's weights."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError


def load_state_dict_file(path: str | Path, flag: str | None = None) -> dict:
    """Read a ``.safetensors`` or ``.pt/.pth/.bin`` state dict; unwraps ``{"state_dict": ...}``.
    Errors name ``flag``; by default the flag that gave the weights of the tower being built
    (:func:`vlkd_core.sdk.pretrained_flag`)."""
    if flag is None:
        from .._model.pretrained_flag import pretrained_flag
        flag = pretrained_flag()
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{flag}: weights file '{path}' does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    import torch
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"{flag}: cannot read weights file '{path}': {exc}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return state


def hash_state(module: Any, hasher: Any) -> None:
    """Feed ``hasher`` (a hashlib object) every tensor of ``module``'s state dict in name order:
    its name, dtype, shape and every byte, so weights that differ anywhere hash differently
    (the feature store's ``weights_sha256``, the feature cache's model fingerprint)."""
    import torch
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        hasher.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.numel():
            hasher.update(t.reshape(-1).view(torch.uint8).numpy())
