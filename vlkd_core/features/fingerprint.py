"""The content fingerprint of a store's data: a digest of every local file or folder a data option
names (a CSV, a COCO JSON, brace-expanded webdataset shards, an image root), so a caption edited
in the CSV after ``vlkd features extract`` is caught before a run's first step, not when a batch
first misses its key.

Files up to ``WHOLE`` bytes are hashed whole; larger ones (shards) by their size and first and
last MiB; folders by the names and sizes of the files under them (no times: a copied dataset
keeps its fingerprint). Only names relative to what the option names enter the digest, so a
moved dataset keeps it too. Pipe and remote URLs are never opened here.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

from ..safety import needs_command

WHOLE = 64 << 20
EDGE = 1 << 20


def _file_digest(path: Path, h: Any) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}|{size}|".encode())
    with open(path, "rb") as fh:
        if size <= WHOLE:
            for block in iter(lambda: fh.read(EDGE), b""):
                h.update(block)
            return
        h.update(fh.read(EDGE))
        fh.seek(size - EDGE)
        h.update(fh.read(EDGE))


def _folder_digest(folder: Path, h: Any) -> None:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            try:
                size = path.stat().st_size
            except OSError:
                size = -1
            h.update(f"{path.relative_to(folder)}|{size}\n".encode())


def _local_paths(value: str) -> Iterator[Path]:
    from braceexpand import braceexpand
    for pattern in value.split("::"):
        if needs_command(pattern):
            continue
        for name in braceexpand(pattern.strip()):
            path = Path(name).expanduser()
            if path.exists():
                yield path
            elif "," in name:  # several CSV files in one option ("a.csv,b.csv")
                yield from (Path(p.strip()).expanduser() for p in name.split(",") if Path(p.strip()).expanduser().exists())


def _strings(options: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in sorted(options.items()):
        if isinstance(value, dict):
            yield from _strings(value, f"{prefix}{key}.")
        elif isinstance(value, str):
            yield f"{prefix}{key}", value


def data_fingerprint(options: dict[str, Any]) -> dict[str, str]:
    """``{option key: sha256}`` for every data option naming local files or folders."""
    out = {}
    for key, value in _strings(options):
        paths = list(_local_paths(value))
        if not paths:
            continue
        h = hashlib.sha256()
        for path in paths:
            (_folder_digest if path.is_dir() else _file_digest)(path, h)
        out[key] = h.hexdigest()
    return out


def changed(recorded: dict[str, str], now: dict[str, str]) -> str | None:
    """The first option whose files differ from what the store recorded."""
    return next((key for key in sorted(set(recorded) | set(now)) if recorded.get(key) != now.get(key)), None)
