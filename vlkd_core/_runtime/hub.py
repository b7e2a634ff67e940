"""Failing fast when the Hugging Face Hub cannot be reached (instead of minutes of retries).

Shared by every plugin that loads from the hub (hf, openclip, timm); huggingface_hub is imported
only inside the context manager."""
from __future__ import annotations

import contextlib
import functools
import os
import socket

HUB_HOST = "huggingface.co"


@functools.lru_cache(maxsize=None)
def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """One short TCP probe per process. Behind a proxy we cannot probe: assume reachable."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def offline_requested() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@contextlib.contextmanager
def hub_offline_when_unreachable():
    """Inside the block huggingface_hub runs in offline mode (cached files only, no network
    calls) when HF_HUB_OFFLINE is set or the hub does not answer; yields whether it is offline."""
    offline = offline_requested() or not hub_reachable()
    if not offline:
        yield False
        return
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions
    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    reset_sessions()
    try:
        yield True
    finally:
        constants.HF_HUB_OFFLINE = previous
        reset_sessions()
