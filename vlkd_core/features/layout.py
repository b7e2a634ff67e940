"""The on-disk layout of a teacher feature store, and the only code that writes its files.

    DIR/extraction.json         the settings of the extraction (written first; a restart must match)
    DIR/features-000003.safetensors   one output shard per input shard: entry key -> [width] vector
    DIR/features-000003.json    its record: entries, samples, bytes, sha256 (written after the shard)
    DIR/manifest.json           written last, when every shard is done: the store is complete

Entry keys: the image side stores a sample under its key (webdataset: ``<shard name>/<__key__>``,
map-style sets: the dataset's ``key`` or the index); the text side stores every caption of a
sample under ``<key>#<caption id>``, the caption id being the first 16 hex digits of the SHA-1 of
the caption's UTF-8 bytes (:func:`text_entry`), so a multi-caption sample has one vector per
caption and a caption edited since the extraction is a missing key, never a stale vector.

Every file is written to a temporary name, fsynced and renamed into place, so a killed job never
leaves a shard or a record that looks complete. Only safetensors and JSON are read back.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from pathlib import Path
from typing import Any

from ..durable import publish, sha256_of

FORMAT = "vlkd-features"
VERSION = 1
SETTINGS = "extraction.json"
MANIFEST = "manifest.json"
SHARD_NAME = re.compile(r"^features-\d{6}\.safetensors$")
DTYPES = {"fp32": "F32", "fp16": "F16", "bf16": "BF16"}   # --dtype -> safetensors header dtype


def caption_id(caption: str) -> str:
    return hashlib.sha1(caption.encode("utf-8")).hexdigest()[:16]


def text_entry(key: str, caption: str) -> str:
    """The entry of one caption of sample ``key``."""
    return f"{key}#{caption_id(caption)}"


def shard_file(index: int) -> str:
    return f"features-{index:06d}.safetensors"


def record_file(shard: str) -> str:
    return shard.replace(".safetensors", ".json")


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    publish(tmp, path)


def write_shard(folder: Path, name: str, tensors: dict, record: dict[str, Any]) -> dict[str, Any]:
    """The shard, then its record (with the shard's size and sha256); returns the record."""
    from safetensors.torch import save_file
    path = folder / name
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    publish(tmp, path)
    record = {**record, "file": name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
    write_json(folder / record_file(name), record)
    return record


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None when missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished_record(folder: Path, name: str) -> dict[str, Any] | None:
    """The record of a finished shard: present, naming this shard, and the shard's size and
    sha256 match it; None means the shard must be (re)written."""
    record = read_json(folder / record_file(name))
    path = folder / name
    if record is None or record.get("file") != name or not path.is_file():
        return None
    if path.stat().st_size != record.get("bytes") or sha256_of(path) != record.get("sha256"):
        return None
    return record


def read_header(path: Path) -> dict[str, Any]:
    """A safetensors file's header (entry -> dtype, shape, offsets) without reading the data."""
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        if size > 1 << 31:
            raise ValueError("header too large")
        header = json.loads(fh.read(size))
    header.pop("__metadata__", None)
    return header
