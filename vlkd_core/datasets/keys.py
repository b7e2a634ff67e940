"""The key rule: how a sample, and each of its captions, is named wherever features are kept.

- A sample's key is its ``key`` (csv: the image path, webdataset: ``<shard name>/<__key__>``, ...),
  else its index in the dataset (a streaming set: its position in the stream): :func:`sample_key`.
- One caption of a sample is the entry ``<key>#<caption id>``, the id being the first 16 hex
  digits of the SHA-1 of the caption's UTF-8 bytes (:func:`caption_entry`): a feature store keeps
  one vector per caption of a multi-caption sample, and a caption edited since the extraction is
  a missing entry, never a stale vector.
- A locked tower's feature cache keys a caption by its text alone (the same caption is the same
  input wherever it occurs) and an image by its sample key: :func:`input_keys`.

Used by training's data views, the dataset mixture, the feature store (extraction, lookup and
coverage check) and the feature cache.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def sample_key(item: Mapping, index: object) -> str:
    """``item``'s key, else ``index`` (its position in the dataset), as a string."""
    key = item.get("key")
    return str(index if key is None else key)


def caption_id(caption: str) -> str:
    return hashlib.sha1(caption.encode("utf-8")).hexdigest()[:16]


def caption_entry(key: str, caption: str) -> str:
    """The entry of one caption of sample ``key``."""
    return f"{key}#{caption_id(caption)}"


def input_keys(side: str, keys: Sequence[str], texts: Sequence[str], entries: bool = False) -> list[str]:
    """Each row's key on ``side``: the sample key for an image; for a caption, the caption itself
    (a feature cache: one input wherever it occurs) or, with ``entries``, its caption entry (a
    feature store: one vector per sample and caption)."""
    if side == "image":
        return list(keys)
    return [caption_entry(k, t) for k, t in zip(keys, texts)] if entries else list(texts)
