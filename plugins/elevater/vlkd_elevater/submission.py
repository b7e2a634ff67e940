"""The ELEVATER leaderboard submission files.

Per dataset, a record ``{"model_name", "dataset_name", "num_trainable_params", "num_params",
"num_visual_params", "num_backbone_params", "n_shot", "rnd_seeds", "predictions"}`` where
``predictions`` is the probability tensor ``[len(rnd_seeds), #test images, #classes]``
(n_shot 0 = zero-shot, -1 = full training set). The submission is ``all_predictions.zip``
holding ``all_predictions.json`` = ``{"data": [record, ...]}`` with floats rounded to 6 digits,
as the toolkit's ``prepare_submit.py`` writes it.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def count_params(model: Any) -> tuple[int, int]:
    """(all parameters, image-side parameters) of a DualEncoder-like model."""
    total = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else 0
    visual = 0
    for attr in ("image_tower", "image_head"):
        part = getattr(model, attr, None)
        if part is not None and hasattr(part, "parameters"):
            visual += sum(p.numel() for p in part.parameters())
    return int(total), int(visual)


def make_record(model: Any, model_name: str, dataset_name: str, n_shot: int, seeds: list[int],
                probs: np.ndarray, num_trainable_params: int) -> dict:
    total, visual = count_params(model)
    return {"model_name": model_name, "dataset_name": dataset_name,
            "num_trainable_params": int(num_trainable_params), "num_params": total,
            "num_visual_params": visual, "num_backbone_params": total, "n_shot": int(n_shot),
            "rnd_seeds": [int(s) for s in seeds],
            "predictions": np.round(np.asarray(probs, dtype=np.float64), 6).tolist()}


def write_submission(records: list[dict], output_dir: str | Path, name: str = "all_predictions") -> Path:
    """Writes ``predictions/<dataset>.json`` per record and ``<name>.zip`` with ``<name>.json``."""
    out = Path(output_dir)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    for rec in records:
        (out / "predictions" / f"{rec['dataset_name']}.json").write_text(json.dumps(rec))
    path = out / f"{name}.zip"
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.json", json.dumps({"data": records}))
    tmp.replace(path)  # atomic: a reader never sees half a zip
    return path


def read_submission(path: str | Path) -> dict[str, dict]:
    """``{dataset_name: record}`` from an ``all_predictions.zip`` (or its ``.json``)."""
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            text = zf.read(f"{path.stem}.json")
    else:
        text = path.read_text(encoding="utf-8")
    return {rec["dataset_name"]: rec for rec in json.loads(text)["data"]}
