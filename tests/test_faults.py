"""Fault matrix: a run SIGKILLed mid-step, mid-save or mid-eval and resumed ends with exactly the
weights of an uninterrupted run (towers with and without dropout, frozen-teacher feature cache on
and off); a corrupt or incomplete newest checkpoint is skipped with a one-line warning and the
run resumes from the previous one.

Kills are deterministic: the test plugin ``fault_plugin`` SIGKILLs its own process at a chosen
point. Each run is a forked child of this process (the framework is already imported, so a run of
toy towers takes a fraction of a second) and dies by a real SIGKILL.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fault_helpers import KILLED, STEPS, assert_same_weights, config, fault_plugin_registered, run_forked  # noqa: F401
from vlkd_core.errors import VlkdError

pytestmark = [pytest.mark.usefixtures("fault_plugin_registered"), pytest.mark.slow]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted runs, one per (dropout, cache) cell, computed once."""
    root = tmp_path_factory.mktemp("reference")
    done: dict[tuple[bool, str], Path] = {}

    def get(dropout: bool, cache: str) -> Path:
        if (dropout, cache) not in done:
            name = f"ref-{int(dropout)}-{cache}"
            assert run_forked(config(root, name, dropout, cache)) == 0
            done[dropout, cache] = root / name
        return done[dropout, cache]
    return get


# (kill point, n): mid-step 11 (last checkpoint: step 9); mid-write of the 3rd training.pt
# (step 9; last complete: step 6); after the 3rd checkpoint folder is renamed in but before LATEST
# moves; inside the 2nd evaluation (end of epoch 2, step 16; last checkpoint: step 15).
POINTS = [("step", 11), ("save-write", 3), ("save-publish", 3), ("eval", 2)]


@pytest.mark.parametrize("cache", ["memory", "none"])
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("point, n", POINTS, ids=[p for p, _ in POINTS])
def test_sigkill_then_resume_is_bitwise_exact(tmp_path, references, point, n, dropout, cache):
    reference = references(dropout, cache)
    assert run_forked(config(tmp_path, "run", dropout, cache), point, n) == KILLED
    latest = tmp_path / "run" / "checkpoints" / "LATEST"
    assert not latest.exists() or latest.read_text().strip() < f"step-{STEPS:07d}"
    assert run_forked(config(tmp_path, "run", dropout, cache, resume="latest")) == 0
    assert_same_weights(reference, tmp_path / "run")


def test_disk_feature_cache_resume_matches_a_memory_cache_run(tmp_path, references):
    """A cached feature is a function of its input alone, so a disk cache (saved at checkpoints,
    missing what was computed after the last one) gives the weights of a memory-cache run."""
    disk = dict(feature_cache="disk", feature_cache_dir=str(tmp_path / "features"))
    assert run_forked(config(tmp_path, "run", True, **disk), "step", 11) == KILLED
    assert list((tmp_path / "features").glob("*.safetensors"))
    assert run_forked(config(tmp_path, "run", True, resume="latest", **disk)) == 0
    assert_same_weights(references(True, "memory"), tmp_path / "run")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


CORRUPTIONS = {
    "truncated weights": lambda ck: _truncate(ck / "weights.safetensors"),
    "missing weights": lambda ck: (ck / "weights.safetensors").unlink(),
    "truncated training state": lambda ck: _truncate(ck / "training.pt"),
    "missing training state": lambda ck: (ck / "training.pt").unlink(),
    "truncated meta": lambda ck: _truncate(ck / "meta.json"),
    "truncated manifest": lambda ck: _truncate(ck / "manifest.json"),
    "flipped byte in weights": lambda ck: _flip(ck / "weights.safetensors"),
}


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run killed mid-step 11: checkpoints step-6 and step-9 (keep 2)."""
    root = tmp_path_factory.mktemp("interrupted")
    assert run_forked(config(root, "run"), "step", 11) == KILLED
    ckpts = sorted(p.name for p in (root / "run" / "checkpoints").glob("step-*"))
    assert ckpts == ["step-0000006", "step-0000009"]
    return root / "run"


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, references, interrupted, corruption, capfd):
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    CORRUPTIONS[corruption](run / "checkpoints" / "step-0000009")
    capfd.readouterr()
    assert run_forked(config(tmp_path, "run", resume="latest")) == 0
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "step-0000009" in line]
    assert len(warnings) == 1 and "step-0000006" in warnings[0], err
    assert "Traceback" not in err
    assert_same_weights(references(False, "memory"), run)


def test_latest_pointing_nowhere_uses_newest_valid_checkpoint(tmp_path, references, interrupted, capfd):
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    (run / "checkpoints" / "LATEST").write_text("step-0000099")
    capfd.readouterr()
    assert run_forked(config(tmp_path, "run", resume="latest")) == 0
    err = capfd.readouterr().err
    assert "step-0000099" in err and "Traceback" not in err, err
    assert_same_weights(references(False, "memory"), run)


def test_no_valid_checkpoint_is_one_line_error(tmp_path, interrupted):
    from vlkd_core.training import checkpoint as ckpt
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    for folder in (run / "checkpoints").glob("step-*"):
        _truncate(folder / "weights.safetensors")
    with pytest.raises(VlkdError) as info:
        ckpt.find_checkpoint("latest", run)
    message = str(info.value)
    assert "\n" not in message and "step-0000006" in message and "step-0000009" in message
    with pytest.raises(VlkdError, match="weights.safetensors has"):  # a folder named explicitly
        ckpt.find_checkpoint(str(run / "checkpoints" / "step-0000009"))


def test_pruning_keeps_the_newest_valid_checkpoint_not_the_newest_name(tmp_path, interrupted):
    from vlkd_core.training import checkpoint as ckpt
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    _truncate(run / "checkpoints" / "step-0000009" / "training.pt")
    ckpt.prune(run / "checkpoints", keep=1)
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-0000006"]


def test_eval_of_run_verifies_and_falls_back(tmp_path, interrupted, capfd):
    from vlkd_core.training.restore import load_run
    run = tmp_path / "run"
    shutil.copytree(interrupted, run)
    _truncate(run / "checkpoints" / "step-0000009" / "weights.safetensors")
    restored = load_run(run)
    assert restored.checkpoint.name == "step-0000006"
    assert "step-0000009" in capfd.readouterr().err


@pytest.mark.slow
def test_efficientnet_stochastic_depth_resume_is_exact(tmp_path):
    """The issue's case: torchvision's efficientnet_b0 draws stochastic depth and dropout from the
    global RNG; before the loader had its own generator, 315 of 364 tensors differed."""
    def job(name, **kw):
        return config(tmp_path, name, image="torchvision:efficientnet_b0",
                      image_head="linear", embed_dim=64, text="toy:tiny", loss="infonce", teacher="none",
                      data_options={"size": 32, "length": 64}, eval=[], **kw)
    assert run_forked(job("full")) == 0
    assert run_forked(job("killed"), "save-write", 2) == KILLED  # mid-save of step 6: resume from 3
    assert run_forked(job("killed", resume="latest")) == 0
    assert_same_weights(tmp_path / "full", tmp_path / "killed", steps=12)
