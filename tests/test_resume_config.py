"""`vlkd train --resume latest --name NAME` alone continues the run with its saved config; flags
given with it may change only what a resumed run may change. A finished run stays finished, and
metrics.jsonl never doubles back after a resume."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from train_helpers import TOWERS, read_jsonl, invoke_cli

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

# 64 samples / batch 32 = 2 steps per epoch; 2 epochs = 4 steps, a checkpoint after every step
JOB = [*TOWERS, "--data-option", "size=32", "--data-option", "length=64", "--loss", "infonce",
       "--teacher", "none", "--save-every", "1", "--keep-checkpoints", "5", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = invoke_cli(["train", *JOB, "--output-dir", str(root), "--name", "r"])
    assert result.returncode == 0, result.stderr
    return root / "r"


def _interrupted(finished: Path, dest: Path) -> Path:
    """The finished run as if it had been killed right after its step-3 checkpoint."""
    run = dest / "r"
    shutil.copytree(finished, run)
    shutil.rmtree(run / "checkpoints" / "step-0000004")
    (run / "checkpoints" / "LATEST").write_text("step-0000003")
    (run / "summary.json").unlink()
    return run


def _resume(run: Path, *extra: str):
    return invoke_cli(["train", "--resume", "latest", "--output-dir", str(run.parent), "--name", run.name,
                    "--no-progress", *extra])


def test_resume_latest_alone_takes_the_saved_config(finished, tmp_path):
    run = _interrupted(finished, tmp_path)
    result = _resume(run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4
    assert (run / "checkpoints" / "step-0000004").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["image"] == "toy:tiny" and config["lr"] == 1e-3  # not the defaults


def test_resume_may_extend_training(finished, tmp_path):
    run = _interrupted(finished, tmp_path)
    result = _resume(run, "--epochs", "3", "--save-every", "2", "--log-every", "2")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["steps"] == 6


@pytest.mark.parametrize("flag, value", [("--lr", "0.5"), ("--loss", "simreg"), ("--image", "toy:small"),
                                         ("--batch-size", "16"), ("--data-option", "length=128"),
                                         ("--optimizer", "sgd"), ("--scheduler-option", "final_lr_ratio=0.1")])
def test_resume_refuses_a_changed_model_data_or_optimiser_option(finished, tmp_path, flag, value):
    run = _interrupted(finished, tmp_path)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    result = _resume(run, flag, value)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert flag in lines[0] and "saved" in lines[0], lines[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def test_resume_with_the_same_flags_still_works(finished, tmp_path):
    run = _interrupted(finished, tmp_path)
    result = _resume(run, *JOB)
    assert result.returncode == 0, result.stderr


def test_metrics_jsonl_is_truncated_to_the_checkpoint_on_resume(finished, tmp_path):
    run = _interrupted(finished, tmp_path)
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl") if r["type"] == "train"] == [1, 2, 3, 4]
    assert _resume(run).returncode == 0
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl") if r["type"] == "train"]
    assert steps == [1, 2, 3, 4]
    # tensorboard (its own plugin) purges the events after the checkpoint: step 4 is there once
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    board = EventAccumulator(str(run / "tensorboard"))
    board.Reload()
    assert [e.step for e in board.Scalars("train/loss")] == [1, 2, 3, 4]


def test_resuming_a_finished_run_says_so_and_changes_nothing(finished, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(finished, run)
    digest = {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in run.iterdir() if p.is_file()}
    result = _resume(run)
    assert result.returncode == 0, result.stderr
    assert "complete" in " ".join(result.stdout.split()), result.stdout
    assert {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in run.iterdir() if p.is_file()} == digest
    assert "NaN" not in (run / "summary.json").read_text()


def test_resume_from_a_checkpoint_path_alone_continues_that_run(finished, tmp_path):
    run = _interrupted(finished, tmp_path / "moved")  # a run folder moved (or received) elsewhere
    result = invoke_cli(["train", "--resume", str(run / "checkpoints" / "step-0000003"), "--no-progress"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    assert (run / "checkpoints" / "step-0000004").exists()
