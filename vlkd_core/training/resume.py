"""Resuming takes the run's saved config; the options given with ``--resume`` may change only
what does not change the model, the data or the optimisation already under way.

    cfg = config_for_resume({"resume": "latest", "name": "my-run", "epochs": 8})
    vlkd.training.train(cfg)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .config import TrainConfig, option_name, options

# Options that may differ from the saved config when resuming (declared ``resumable`` in
# config.py): how long to train, when to save, evaluate and log, and where things live -- never
# the model, the data or the optimiser.
MAY_CHANGE = tuple(key for key, opt in options().items() if opt.resumable)


def _run_dir_of(folder: Path) -> Path:
    return folder.parent.parent if folder.parent.name == "checkpoints" else folder


def saved_config(resume: str, run_dir: Path | None) -> tuple[dict[str, Any], Path]:
    """(the saved config of the checkpoint ``resume`` names, where it was read from)."""
    from .._runfiles.runfiles import read_json
    from . import checkpoint as ckpt
    folder = ckpt.find_checkpoint(resume, run_dir)
    meta_path = folder / "meta.json"
    config = ckpt.read_meta(folder).get("config") if os.path.lexists(meta_path) else None
    if config is None:  # an older checkpoint without a config: the run folder's config.json
        meta_path = _run_dir_of(folder) / "config.json"
        if not os.path.lexists(meta_path):
            raise UsageError(f"--resume '{resume}': {folder} holds no saved config (meta.json or config.json)")
        config = read_json(meta_path)
    return config, folder


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def config_for_resume(given: dict[str, Any], source: str = "flags") -> TrainConfig:
    """The config to continue a run with: its saved config, with the options in ``given`` (those
    the user set: flags and config-file keys, including ``resume``) applied where MAY_CHANGE
    allows; any other option that differs from the saved value is a UsageError naming it."""
    resume = given["resume"]
    defaults = TrainConfig()
    output_dir, name = given.get("output_dir", defaults.output_dir), given.get("name")
    if resume == "latest" and not name:
        raise UsageError(f"--resume latest needs --name: which run under '{output_dir}' should continue?")
    if name:  # refuse a run folder that is not one (or holds links) before reading from it
        from .runtime import check_run_dir
        check_run_dir(Path(output_dir), Path(output_dir) / name)
    saved, folder = saved_config(resume, Path(output_dir) / name if name else None)
    cfg = TrainConfig.from_dict(saved, source=str(folder / "meta.json"))
    data = cfg.to_dict()
    # the run continues where it was found, never where its saved config says (it is data)
    data["output_dir"], data["name"] = str(output_dir), name
    if resume != "latest" and not name:  # --resume PATH continues that run, where it now lives
        run_dir = _run_dir_of(folder)
        data["output_dir"], data["name"] = str(run_dir.parent), run_dir.name
    for key, value in given.items():
        if key in MAY_CHANGE:
            data[key] = value
        elif not _same(value, data.get(key)):
            allowed = ", ".join(option_name(k, "flags") for k in MAY_CHANGE[:10])
            raise UsageError(f"{option_name(key, source)} {json.dumps(value)} differs from the run's "
                             f"saved {json.dumps(data.get(key))} ({folder / 'meta.json'}); a resumed "
                             f"run keeps its config: only {allowed} may change")
    return TrainConfig.from_dict(data, source=source)


def completed_summary(run_dir: Path, step: int, total_steps: int) -> dict[str, Any]:
    """What ``train`` returns when asked to resume a run that already reached its last step:
    the run's own summary.json (left untouched), marked ``already_complete``."""
    from .._runfiles.runfiles import read_json
    try:
        summary = read_json(Path(run_dir) / "summary.json")
    except UsageError:
        summary = {}
    return dict(summary, run_dir=str(run_dir), steps=step, already_complete=True, total_steps=total_steps)
