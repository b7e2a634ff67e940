"""Bad input fails with a clear one-line message and a non-zero exit; checkpoints survive."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from train_helpers import TINY, TOWERS, invoke_cli


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = invoke_cli(["train", *TINY, "--loss", "simreg", "--teacher", "text", "--epochs", "1",
                      "--output-dir", str(root), "--name", "ok", "--save-every", "4"])
    assert result.returncode == 0, result.stderr
    return root / "ok"


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    for i, colour in enumerate(["red", "green", "blue", "yellow"] * 4):
        Image.new("RGB", (24, 24), colour).save(tmp_path / f"img{i}.png")
    path = tmp_path / "data.csv"
    path.write_text("filepath,title\n" + "\n".join(rows) + "\n")
    return path


def _good_rows(n=16):
    colours = ["red", "green", "blue", "yellow"] * 4
    return [f"img{i}.png,a {colours[i]} square" for i in range(n)]


@pytest.mark.parametrize("case, args, message", [
    ("unknown loss", ["--loss", "seeed"], "unknown loss 'seeed'; did you mean seed"),
    ("kd without teacher", ["--loss", "simreg", "--teacher", "none"], "loss 'simreg' distils from a teacher"),
    ("dimension mismatch", ["--loss", "simreg", "--teacher", "text", "--text-option", "output_dim=32"],
     "dimension mismatch: image features are 64-d and text features 32-d; add --image-head linear"),
    ("unknown backbone", ["--image", "toy:tinny"], "unknown model 'tinny' in family 'toy'; did you mean tiny"),
    ("bad option", ["--loss", "seed", "--teacher", "text", "--loss-option", "seed.queue=3"],
     "loss 'seed' has no option 'queue'"),
])
@pytest.mark.slow
def test_impossible_compositions_fail_before_reading_data(tmp_path, finished_run, case, args, message):
    before = _digest(finished_run)
    # a broken composition fails before any data is read or anything is written beside the
    # finished run (resuming it with a changed composition is refused earlier still, see
    # tests/test_resume_config.py)
    result = invoke_cli(["train", *TINY, "--output-dir", str(finished_run.parent), "--name", "broken", *args])
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert _digest(finished_run) == before
    assert not (finished_run.parent / "broken" / "checkpoints").exists()


def test_malformed_csv_row_names_file_and_row(tmp_path):
    rows = _good_rows()
    rows[4] = "img4.png"  # caption missing: line 6 of the file (header is line 1)
    path = _csv(tmp_path, rows)
    result = invoke_cli(["train", *TOWERS, "--loss", "simreg", "--teacher", "text", "--data", "csv",
                      "--data-option", f"path={path}", "--output-dir", str(tmp_path / "runs")])
    assert result.returncode != 0
    flat = " ".join(result.stderr.split())
    assert re.search(r"data\.csv\b.*\b(line|row) 6\b", flat), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_bad_images_are_counted_and_skipped_or_stop_with_strict(tmp_path, problem):
    rows = _good_rows()
    path = _csv(tmp_path, rows)
    if problem == "missing":
        (tmp_path / "img3.png").unlink()
    else:
        (tmp_path / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    common = ["train", *TOWERS, "--loss", "simreg", "--teacher", "text", "--data", "csv",
              "--data-option", f"path={path}", "--batch-size", "4", "--output-dir", str(tmp_path / "runs")]
    result = invoke_cli([*common, "--name", "lenient"])
    assert result.returncode == 0, result.stderr
    assert "img3.png" in result.stderr + result.stdout  # a warning names the file
    summary = json.loads((tmp_path / "runs" / "lenient" / "summary.json").read_text())
    assert summary["skipped_samples"] >= 1
    strict = invoke_cli([*common, "--name", "strict", "--strict"])
    assert strict.returncode != 0 and "img3.png" in strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # a checkpoint after every step, so the step before the blow-up has one
    common = ["train", *TINY, "--loss", "simreg", "--teacher", "text", "--output-dir", str(tmp_path),
              "--name", "nan", "--save-every", "1", "--grad-clip", "0"]
    result = invoke_cli([*common, "--lr", "1e30", "--warmup-steps", "0"])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    stop = re.search(r"loss became \S+ at step (\d+)", " ".join(result.stderr.split()))
    assert stop, result.stderr
    bad = int(stop.group(1))
    assert bad >= 2  # step 1 runs on the initial weights: its loss is finite
    checkpoints = tmp_path / "nan" / "checkpoints"
    folders = sorted(p.name for p in checkpoints.glob("step-*"))
    assert folders and all(int(name.removeprefix("step-")) < bad for name in folders), folders
    latest = (checkpoints / "LATEST").read_text().strip()
    assert latest == f"step-{bad - 1:07d}"  # the last good checkpoint is the newest
    weights = load_file(checkpoints / latest / "weights.safetensors")
    assert weights and all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())
