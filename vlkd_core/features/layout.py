"""The on-disk layout of a teacher feature store, and the only code that writes its files.

    DIR/extraction.json         the settings of the extraction (written first; a restart must match)
    DIR/features-000003.safetensors   one output shard per input shard: entry key -> [width] vector
    DIR/features-000003.json    its record: entries, samples, bytes, sha256 (written after the shard)
    DIR/manifest.json           written last, when every shard is done: the store is complete

Entry keys: the image side stores a sample under its key (webdataset: ``<shard name>/<__key__>``,
map-style sets: the dataset's ``key`` or the index); the text side stores every caption of a
sample under ``<key>#<caption id>``, the caption id being the first 16 hex digits of the SHA-1 of
the caption's UTF-8 bytes, so a multi-caption sample has one vector per caption and a caption
edited since the extraction is a missing key, never a stale vector (the key rule:
:mod:`vlkd_core.datasets.keys`).

Every file is written to a temporary name, fsynced and renamed into place, so a killed job never
leaves a shard or a record that looks complete. Only safetensors and JSON are read back.
"""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any

from .._runfiles import runfiles
from .._runfiles.durable import publish, sha256_of
from ..errors import UsageError
from .._runfiles.runfiles import is_regular, write_atomic

FORMAT = "vlkd-features"
VERSION = 1
SETTINGS = "extraction.json"
MANIFEST = "manifest.json"
SHARD_NAME = re.compile(r"^features-\d{6}\.safetensors$")
DTYPES = {"fp32": "F32", "fp16": "F16", "bf16": "BF16"}   # --dtype -> safetensors header dtype


def shard_file(index: int) -> str:
    return f"features-{index:06d}.safetensors"


def record_file(shard: str) -> str:
    return shard.replace(".safetensors", ".json")


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_shard(folder: Path, name: str, tensors: dict, record: dict[str, Any]) -> dict[str, Any]:
    """The shard, then its record (with the shard's size and sha256); returns the record."""
    from safetensors.torch import save_file
    path = folder / name
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)  # never write through a link left there
    try:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk stays full otherwise
        raise
    record = {**record, "file": name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
    write_json(folder / record_file(name), record)
    return record


def remove_leftovers(folder: Path) -> None:
    """Delete the temporary files a killed or failed extraction left in ``folder``."""
    for junk in folder.glob(".*.tmp-*"):
        if is_regular(junk) or junk.is_symlink():
            junk.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None when missing, unreadable, not UTF-8 JSON, a link or not an object."""
    try:
        return runfiles.read_json(path)
    except (OSError, UsageError):
        return None


def finished_record(folder: Path, name: str) -> dict[str, Any] | None:
    """The record of a finished shard: present, naming this shard, and the shard's size and
    sha256 match it; None means the shard must be (re)written."""
    record = read_json(folder / record_file(name))
    path = folder / name
    if record is None or record.get("file") != name or not is_regular(path):
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


# what every key of a finished manifest must hold (a hand-edited one is refused in one line)
MANIFEST_TYPES = {"side": str, "width": int, "dtype": str, "model": dict, "count": int, "samples": int,
                  "units": int, "shards": list, "data": dict, "preprocessing": dict}
SHARD_TYPES = {"file": str, "bytes": int, "sha256": str, "entries": int, "samples": int}


def _type_problem(data: dict[str, Any], types: dict[str, type], where: str) -> str | None:
    for key, kind in types.items():
        if key not in data:
            return f"{where} has no '{key}'"
        value = data[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{where}'s '{key}' is {json.dumps(value)[:40]}, not {'a number' if kind is int else 'a ' + kind.__name__}"
    return None


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with a store's manifest (types, keys, the shard list against the units and
    the count), or None."""
    problem = _type_problem(manifest, MANIFEST_TYPES, "the manifest")
    if problem:
        return problem
    for n, shard in enumerate(manifest["shards"]):
        if not isinstance(shard, dict):
            return f"shards[{n}] is not a table"
        problem = _type_problem(shard, SHARD_TYPES, f"shards[{n}]")
        if problem:
            return problem
    fingerprint = manifest.get("data_fingerprint", {})
    if not (isinstance(fingerprint, dict) and all(isinstance(v, str) for v in fingerprint.values())):
        return "its 'data_fingerprint' is not a table of digests"
    if len(manifest["shards"]) != manifest["units"]:
        return f"lists {len(manifest['shards'])} shards of the extraction's {manifest['units']}"
    if sum(s["entries"] for s in manifest["shards"]) != manifest["count"]:
        return f"its shards hold {sum(s['entries'] for s in manifest['shards'])} entries, not its count {manifest['count']}"
    return None
