"""`vlkd features extract`: encode a dataset with a locked tower into a sharded feature store.

Each rank takes whole units (input shards, see :mod:`.sources`) of those not yet finished, in
turn (``todo[rank::world]``); a unit's features do not depend on the rank that computes it, so
1 and N processes write the same bytes. A finished shard (its record present, size and sha256
matching) is skipped, so a killed job run again finishes with the files an uninterrupted one
writes. The manifest is written last, by rank 0, once every shard is finished.
"""
from __future__ import annotations

import datetime
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .. import api
from ..errors import UsageError
from .._runfiles.storage import write_errors
from .._model.freeze import lock
from . import layout
from .extract_config import ExtractConfig
from .encode import Encoder, preprocessing, weights_sha256
from .fingerprint import data_fingerprint
from .progress import ExtractProgress
from .sources import units_of

KEY_SCHEME = {"image": "<sample key>",
              "text": "<sample key>#<first 16 hex digits of sha1(caption utf-8)>, one per caption"}


def build_tower(cfg: ExtractConfig) -> torch.nn.Module:
    """The tower as a run's teacher is built: the same options, locked, eval mode."""
    tower = cfg.tower
    built = api.build_backbone(tower.spec, modality=tower.side, pretrained=tower.pretrained,
                               **api.with_cache_dir(tower.spec, tower.options, cfg.cache_dir))
    lock(built)
    return built.eval()


def settings_of(cfg: ExtractConfig, tower: torch.nn.Module, units: int) -> dict[str, Any]:
    """Everything the features depend on; a restart into the same folder must match it."""
    named = cfg.tower  # as the user named it; ``tower`` is the module built from it
    return {"format": layout.FORMAT, "version": layout.VERSION, "side": named.side,
            "model": {"spec": named.spec, "pretrained": named.pretrained, "options": named.options},
            "weights_sha256": weights_sha256(tower), "preprocessing": preprocessing(tower, named.side),
            "dtype": cfg.dtype, "width": int(tower.output_dim), "batch_size": cfg.batch_size,
            "data": {"name": cfg.data, "options": cfg.data_options, "split": cfg.split},
            "data_fingerprint": data_fingerprint(cfg.data_options),
            "shard_size": cfg.shard_size, "units": units, "key_scheme": KEY_SCHEME[named.side]}


def _claim(folder: Path, settings: dict[str, Any]) -> None:
    """Write the settings, or check that a previous extraction into ``folder`` used these."""
    import json
    path = folder / layout.SETTINGS
    layout.remove_leftovers(folder)  # temporary files of a killed extraction
    before = layout.read_json(path)
    if before is None:
        if path.exists() or any(folder.glob("features-*.safetensors")):
            raise UsageError(f"'{folder}' holds feature shards but no readable {layout.SETTINGS}; "
                             "use an empty --out folder")
        layout.write_json(path, settings)
        return
    differ = sorted(k for k in settings if json.dumps(before.get(k), sort_keys=True) != json.dumps(settings[k], sort_keys=True)
                    and (k in before or k != "data_fingerprint"))  # an extraction begun before fingerprints
    if differ:
        raise UsageError(f"'{folder}' holds an extraction with another {differ[0]} "
                         f"({json.dumps(before.get(differ[0]))[:80]}); resume it with the same flags "
                         "or use another --out")


def _barrier(distributed: bool) -> None:
    if distributed:
        torch.distributed.barrier()


def _finish(folder: Path, settings: dict[str, Any], units: list) -> dict[str, Any]:
    shards = []
    for unit in units:
        name = layout.shard_file(unit.index)
        record = layout.finished_record(folder, name)
        if record is None:
            raise UsageError(f"'{folder / name}' ({unit.source}) is missing or damaged after the "
                             "extraction; run the same command again to redo it")
        shards.append({"file": name, "source": unit.source, "entries": record["entries"],
                       "samples": record["samples"], "bytes": record["bytes"], "sha256": record["sha256"]})
    manifest = {**settings, "count": sum(s["entries"] for s in shards),
                "samples": sum(s["samples"] for s in shards), "shards": shards}
    layout.write_json(folder / layout.MANIFEST, manifest)
    return manifest


def _init_distributed() -> None:
    """Under torchrun: a process group whose barrier outlasts a long imbalance (a resumed job's
    ranks wait for the slowest one; gloo's default is 30 minutes)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend, timeout=datetime.timedelta(days=7))


def extract(cfg: ExtractConfig, console: Any = None) -> dict[str, Any] | None:
    """Run the extraction on this process's share; returns the manifest on rank 0."""
    from ..training.runtime import setup_runtime, teardown_runtime
    cfg.validate()
    if int(os.environ.get("RANK", "0")) == 0:
        cfg.check_out()
    _init_distributed()
    rt = setup_runtime()
    finished = False
    try:
        manifest = _extract(cfg, rt, console)
        finished = True
        return manifest
    finally:
        teardown_runtime(rt, finished)


def _extract(cfg: ExtractConfig, rt: Any, console: Any) -> dict[str, Any] | None:
    from ..training.runtime import seed_everything
    folder = Path(cfg.out)
    with write_errors(f"feature store '{folder}'", folder.parent):
        folder.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    units = units_of(api.build_dataset(cfg.data, split=cfg.split, **cfg.data_options), cfg.shard_size)
    if cfg.reinforced:
        from ..training.teacher_model import build_teacher_model
        from . import reinforce
        tower = build_teacher_model(cfg)
        settings = reinforce.settings_of(cfg, tower, len(units))
    else:
        tower = build_tower(cfg)
        settings = settings_of(cfg, tower, len(units))
    if rt.is_main:
        with write_errors(f"feature store '{folder}'", folder):
            _claim(folder, settings)
    _barrier(rt.distributed)  # nothing is written before every rank has seen what is finished
    start = time.perf_counter()
    todo = [u for u in units if layout.finished_record(folder, layout.shard_file(u.index)) is None]
    _barrier(rt.distributed)
    mine = todo[rt.rank::rt.world]
    if cfg.reinforced:
        encoder = reinforce.ReinforcedEncoder(tower.to(rt.device), cfg.augmentations, cfg.seed, cfg.augment,
                                              cfg.batch_size, cfg.dtype, rt.device)
    else:
        encoder = Encoder(tower.to(rt.device), cfg.tower.side, cfg.batch_size, cfg.dtype, rt.device)
    total = None if any(u.size is None for u in mine) else sum(u.size for u in mine)
    with ExtractProgress(total, len(mine), rt.is_main and cfg.progress, console) as bar:
        for unit in mine:
            tensors, samples = encoder.encode(unit, bar.advance)
            with write_errors(f"feature store '{folder}'", folder):
                layout.write_shard(folder, layout.shard_file(unit.index), tensors,
                                   {"source": unit.source, "entries": len(tensors), "samples": samples})
            bar.unit_done()
    _barrier(rt.distributed)
    if not rt.is_main:
        return None
    with write_errors(f"feature store '{folder}'", folder):
        manifest = _finish(folder, settings, units)
    return {**manifest, "seconds": time.perf_counter() - start, "encoded": len(todo)}  # not in the file
