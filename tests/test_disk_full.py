"""A full disk and a read-only folder, for real: each case runs `vlkd` in a private mount
namespace (``unshare --user --map-root-user --mount``) over a small tmpfs, so writes fail with the
kernel's own ENOSPC/EROFS (no mock, nothing injected). Each command stops with one line naming
the disk as full (exit 1), keeps what was there and leaves no temporary folder behind; the
temporary folders of a killed write are removed by the next run. Where namespaces are not
allowed the tmpfs cases are skipped; the /dev/full case runs everywhere."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from export_runs import train_run

from vlkd_core.errors import StorageError
from vlkd_core._runfiles.storage import write_errors
from vlkd_core.training import checkpoint as ckpt


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"],
                          capture_output=True).returncode == 0


needs_tmpfs = pytest.mark.skipif(not _namespaces_work(), reason="needs user+mount namespaces for a real small tmpfs")
VLKD = f"{sys.executable} -m vlkd_cli"


def on_small_disk(mount: Path, size: str, script: str) -> subprocess.CompletedProcess:
    """Run the bash ``script`` with a fresh ``size`` tmpfs at ``mount``, visible to it alone."""
    mount.mkdir(exist_ok=True)
    body = f"set -u; mount -t tmpfs -o size={size} vlkd-test {mount} || exit 99; {script}"
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", body],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"})
    assert result.returncode != 99, result.stderr
    return result


def one_error_line(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in path.read_text(), path.read_text()
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return train_run(root, "a"), train_run(root, "b")


@pytest.mark.slow
@needs_tmpfs
def test_export_onto_a_full_disk_keeps_the_old_export_and_says_disk_full(runs, tmp_path):
    a, b = runs
    m, t = tmp_path / "m", tmp_path
    # 6 MB holds one 4.4 MB export, not a second beside it; then the disk is made read-only
    script = f"""
    {VLKD} export {a} --format safetensors --out {m}/exp > /dev/null 2>&1 || exit 98
    cp {m}/exp/vlkd_export.json {t}/first.json
    {VLKD} export {b} --format safetensors --out {m}/exp --overwrite 2> {t}/full.txt; echo $? > {t}/full.rc
    ls -a {m} > {t}/ls.txt; cp {m}/exp/vlkd_export.json {t}/after.json
    mount -o remount,ro {m}
    {VLKD} export {a} --format safetensors --out {m}/exp2 2> {t}/ro.txt; echo $? > {t}/ro.rc
    """
    result = on_small_disk(m, "6m", script)
    assert result.returncode == 0, result.stderr
    assert (t / "full.rc").read_text().strip() == "1"
    assert one_error_line(t / "full.txt") == (f"error: disk full: cannot write export '{m}/exp'; free some "
                                               "space and run the same command again")
    assert (t / "after.json").read_text() == (t / "first.json").read_text()  # the old export, whole
    assert (t / "ls.txt").read_text().split() == [".", "..", "exp"]  # no .exp.partial-* left
    assert (t / "ro.rc").read_text().strip() == "1"
    assert one_error_line(t / "ro.txt").startswith(f"error: read-only file system: cannot write export '{m}/exp2'")


@pytest.mark.slow
@needs_tmpfs
def test_checkpoint_onto_a_full_disk_says_disk_full_and_leaves_no_temporary_folder(tmp_path):
    m, t = tmp_path / "m", tmp_path
    # 8 MB holds the run's start weights (4.4 MB), not a checkpoint (13 MB)
    script = f"""
    {VLKD} train --image toy:tiny --text toy:tiny --image-option image_size=32 --image-head none \
        --teacher none --loss infonce --data-option size=32 --data-option length=32 --batch-size 16 \
        --max-steps 2 --eval none --no-progress --output-dir {m}/runs --name r 2> {t}/err.txt
    echo $? > {t}/rc; ls -a {m}/runs/r/checkpoints > {t}/ls.txt
    """
    result = on_small_disk(m, "8m", script)
    assert result.returncode == 0, result.stderr
    assert (t / "rc").read_text().strip() == "1"
    assert one_error_line(t / "err.txt") == (f"error: disk full: cannot write checkpoint "
                                              f"'{m}/runs/r/checkpoints/step-0000002'; free some space and "
                                              "run the same command again")
    assert (t / "ls.txt").read_text().split() == [".", ".."]  # the .tmp-step folder is gone


@pytest.mark.slow
@needs_tmpfs
def test_features_extract_onto_a_full_disk_says_disk_full(tmp_path):
    m, t = tmp_path / "m", tmp_path
    script = f"""
    {VLKD} features extract --data shapes --data-option size=32 --data-option length=32 --text toy:tiny \
        --out {m}/store --no-progress 2> {t}/err.txt
    echo $? > {t}/rc; ls -a {m}/store > {t}/ls.txt
    """
    result = on_small_disk(m, "8k", script)  # the settings file fits, the first shard does not
    assert result.returncode == 0, result.stderr
    assert (t / "rc").read_text().strip() == "1"
    assert one_error_line(t / "err.txt").startswith(f"error: disk full: cannot write feature store '{m}/store'")
    assert (t / "ls.txt").read_text().split() == [".", "..", "extraction.json"]  # no temporary shard


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="no /dev/full device")
def test_a_torch_save_onto_dev_full_is_named_disk_full():
    """/dev/full fails every write with ENOSPC: torch's own writer would say 'unexpected pos'.
    (Only writes that open the path itself go there: safetensors would rename a file over it.)"""
    with pytest.raises(StorageError) as info, write_errors("checkpoint 'x'"):
        ckpt.save_torch({"w": list(range(100_000))}, Path("/dev/full"))
    assert Path("/dev/full").is_char_device()
    assert str(info.value).startswith("disk full: cannot write checkpoint 'x'; free some space")
    assert StorageError.exit_code == 1


@pytest.mark.slow
def test_the_next_run_removes_what_a_killed_save_left(runs, tmp_path):
    run = tmp_path / "a"
    shutil.copytree(runs[0], run)
    root = run / "checkpoints"
    for junk in (".tmp-step-0000009-4242", ".trash-step-0000001-4242"):
        (root / junk).mkdir()
        (root / junk / "weights.safetensors").write_bytes(b"x" * 1000)
    (root / ".LATEST.tmp-4242-beef").write_text("step-0000009")
    from vlkd_core.training import train
    from vlkd_core.training.resume import config_for_resume
    train(config_for_resume({"resume": "latest", "output_dir": str(tmp_path), "name": "a", "max_steps": 3}))
    assert sorted(p.name for p in root.iterdir()) == ["LATEST", "step-0000002", "step-0000003"]
