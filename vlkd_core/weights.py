"""Loading state dicts from local files safely (safetensors, or torch.load with weights_only)."""
from __future__ import annotations

from pathlib import Path

from .errors import UsageError


def load_state_dict_file(path: str | Path, flag: str = "--pretrained") -> dict:
    """Read a ``.safetensors`` or ``.pt/.pth/.bin`` state dict; unwraps ``{"state_dict": ...}``."""
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
