"""Nothing a user types or receives deletes or redirects a run: the two reproductions of issue 23
(`vlkd export ... --out runs --overwrite` deleting every run; a LATEST of
`../../a/checkpoints/step-0000004` sending eval and resume into another run), and the one folder
rule of every command that writes into a folder the user names (vlkd_core/_runfiles/folders.py)."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
from pathlib import Path

import pytest
from export_runs import train_run
from typer.testing import CliRunner

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.exports import Format, register_format
from vlkd_core.training import checkpoint as ckpt

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

EVAL = "retrieval:dataset=shapes,dataset.size=32,dataset.length=16"


def cli(*args: str):
    from vlkd_cli.app import app
    result = CliRunner().invoke(app, [str(a) for a in args])
    ckpt.release()  # as the process's exit would
    return result


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``runs/a`` and ``runs/b``: two trained runs, checkpoints at steps 2 and 4 each."""
    root = tmp_path_factory.mktemp("repro") / "runs"
    for name in ("a", "b"):
        train_run(root, name, max_steps=4, save_every=2)
    return root


@pytest.fixture
def fresh(runs, tmp_path):
    """A private copy of both runs (the tests damage and overwrite things)."""
    shutil.copytree(runs, tmp_path / "runs")
    return tmp_path / "runs"


# -- reproduction 1: export --overwrite --------------------------------------------------------
@pytest.mark.parametrize("target", ["runs", "runs/a", "runs/a/checkpoints", "runs/a/checkpoints/step-0000004",
                                    "runs/b/exported"])
def test_export_overwrite_never_deletes_a_run(fresh, target):
    before = digest(fresh)
    out = fresh.parent / target
    result = cli("export", fresh / "a", "--format", "safetensors", "--out", out, "--overwrite")
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith("error: --out") and str(out) in line, line
    assert digest(fresh) == before


def test_overwrite_replaces_only_a_previous_export_or_an_empty_folder(fresh, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert vlkd.export(fresh / "a", "safetensors", empty, overwrite=True) == empty
    vlkd.export(fresh / "b", "safetensors", empty, overwrite=True)  # a previous export: replaced whole
    assert "runs/b" in (empty / "vlkd_export.json").read_text()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty and not a vlkd export"):
        vlkd.export(fresh / "a", "safetensors", mine, overwrite=True)
    shutil.copytree(fresh / "a", empty / "a-run")  # an export that now holds a run is not replaced either
    with pytest.raises(UsageError, match="holds the run"):
        vlkd.export(fresh / "a", "safetensors", empty, overwrite=True)
    assert (mine / "notes.txt").read_text() == "mine" and (empty / "a-run" / "checkpoints").is_dir()


def _killing_format(folder: Path, model) -> dict:
    (folder / "model.safetensors").write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_export_keeps_the_old_one_and_the_next_export_removes_its_leftovers(fresh, tmp_path):
    out = tmp_path / "export"
    vlkd.export(fresh / "a", "safetensors", out)
    old = digest(out)
    register_format(Format("sigkill-test-format", "dies half-way", lambda model: None,
                           lambda model, folder: _killing_format(folder, model)))
    pid = os.fork()
    if pid == 0:  # a real SIGKILL in the middle of writing the new export
        try:
            vlkd.export(fresh / "b", "sigkill-test-format", out, overwrite=True)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
    assert digest(out) == old  # the old export, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [f".export.partial-{pid}"]
    vlkd.export(fresh / "b", "safetensors", out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "runs"]  # leftover gone
    assert "runs/b" in (out / "vlkd_export.json").read_text()


# -- reproduction 2: LATEST pointing into another run ---------------------------------------------
REDIRECTS = ["../../a/checkpoints/step-0000004", "{root}/a/checkpoints/step-0000004",
             "step-0000004/../../../a/checkpoints/step-0000004"]


@pytest.mark.parametrize("pointer", REDIRECTS, ids=["relative", "absolute", "name-then-dotdot"])
def test_latest_pointing_into_another_run_is_refused_and_that_run_is_untouched(fresh, pointer):
    latest = fresh / "b" / "checkpoints" / "LATEST"
    latest.write_text(pointer.format(root=fresh))
    before_a = digest(fresh / "a")
    result = cli("eval", fresh / "b", "--eval", EVAL)
    assert result.exit_code == 0, result.stderr
    warning = one_line(result)
    assert warning.startswith(f"warning: '{latest}' holds") and "ignored; using step-0000004" in warning, warning
    assert f"eval:{fresh / 'b' / 'checkpoints' / 'step-0000004'}" in "".join(result.stdout.split())  # rich wraps
    assert (fresh / "b" / "eval.json").is_file() and not (fresh / "a" / "eval.json").exists()
    result = cli("train", "--resume", "latest", "--output-dir", fresh, "--name", "b", "--max-steps", "6",
                 "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "ignored; using step-0000004" in one_line(result)
    assert (fresh / "b" / "checkpoints" / "step-0000006").is_dir()
    assert digest(fresh / "a") == before_a  # every file of run a as it was
    assert vlkd.load(fresh / "b").source == fresh / "b" / "checkpoints" / "step-0000006"


def test_latest_pointing_elsewhere_in_a_run_without_valid_checkpoints_is_one_line_error(fresh):
    shutil.rmtree(fresh / "b" / "checkpoints")
    (fresh / "b" / "checkpoints").mkdir()
    (fresh / "b" / "checkpoints" / "LATEST").write_text("../../a/checkpoints/step-0000004")
    before = digest(fresh)
    for args in (["eval", fresh / "b", "--eval", EVAL],
                 ["train", "--resume", "latest", "--output-dir", fresh, "--name", "b", "--no-progress"]):
        result = cli(*args)
        assert result.exit_code == 2
        line = one_line(result)
        assert line.startswith("error: no valid checkpoint in") and "LATEST" in line, line
    assert digest(fresh) == before


def test_checkpoint_folders_and_files_that_are_links_are_not_followed(fresh):
    step = fresh / "b" / "checkpoints" / "step-0000004"
    shutil.rmtree(step)
    step.symlink_to(fresh / "a" / "checkpoints" / "step-0000004")
    result = cli("eval", fresh / "b", "--eval", EVAL)
    assert result.exit_code == 0 and "skipped step-0000004 (a symbolic link)" in one_line(result)
    assert "step-0000002" in "".join(result.stdout.split())
    weights = fresh / "b" / "checkpoints" / "step-0000002" / "weights.safetensors"
    weights.unlink()
    weights.symlink_to(fresh / "a" / "checkpoints" / "step-0000002" / "weights.safetensors")
    with pytest.raises(UsageError, match="weights.safetensors is a symbolic link"):
        vlkd.load(fresh / "b")


def test_resume_continues_the_run_where_it_was_found_not_where_its_config_says(fresh):
    """A saved config naming another output_dir/name cannot send a resumed run's writes there."""
    import json
    for meta in (fresh / "b" / "checkpoints").glob("step-*/meta.json"):
        data = json.loads(meta.read_text())
        data["config"].update(output_dir=str(fresh), name="a")
        meta.write_text(json.dumps(data))
        from test_run_folder_fuzz import reseal
        reseal(meta.parent)
    before_a = digest(fresh / "a")
    result = cli("train", "--resume", "latest", "--output-dir", fresh, "--name", "b", "--max-steps", "5", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert (fresh / "b" / "checkpoints" / "step-0000005").is_dir() and digest(fresh / "a") == before_a


# -- the same rule for every command that writes into a named folder ------------------------------
def test_every_command_writing_into_a_named_folder_refuses_vlkd_folders(fresh, tmp_path):
    csv = tmp_path / "pairs.csv"
    csv.write_text("filepath,title\nx.png,a cat\n")
    export = tmp_path / "export"
    vlkd.export(fresh / "a", "safetensors", export)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep")
    cases = [
        (["features", "extract", "--data", "shapes", "--text", "toy:tiny", "--out", fresh / "a"], "is a run"),
        (["features", "extract", "--data", "shapes", "--text", "toy:tiny", "--out", fresh / "a" / "store"], "lies inside the run"),
        (["features", "extract", "--data", "shapes", "--text", "toy:tiny", "--out", tmp_path / "notes"], "not empty and not a vlkd feature store"),
        (["data", "to-webdataset", csv, fresh / "a"], "is a run"),
        (["data", "to-webdataset", csv, fresh / "a" / "checkpoints"], "lies inside the run"),
        (["data", "to-webdataset", csv, export], "is an export"),
        (["plugins", "new", "demo-loss", "--output-dir", fresh / "b" / "checkpoints"], "lies inside the run"),
        (["train", "--output-dir", fresh / "a", "--name", "x", "--max-steps", "1"], "is a run"),
        (["train", "--output-dir", fresh / "a" / "checkpoints", "--name", "x", "--max-steps", "1"], "lies inside the run"),
        (["train", "--output-dir", tmp_path, "--name", "export", "--max-steps", "1"], "is an export"),
        (["train", "--output-dir", tmp_path, "--name", "notes", "--max-steps", "1"], "not empty and not a vlkd run"),
    ]
    before = digest(tmp_path)
    for args, words in cases:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        line = one_line(result)
        assert words in line, (args, line)
    assert digest(tmp_path) == before


def test_what_a_folder_is_comes_from_the_files_vlkd_writes(runs, tmp_path):
    from vlkd_core._runfiles import folders
    assert folders.kind_of(runs / "a") == folders.RUN
    assert folders.kind_of(runs / "a" / "checkpoints" / "step-0000004") == folders.CHECKPOINT
    assert folders.kind_of(runs) is None and folders.kind_of(tmp_path / "absent") is None
    killed = tmp_path / "killed-run"
    killed.mkdir()
    (killed / ".lock").write_text("")  # killed between its lock and its config.json
    assert folders.kind_of(killed) == folders.RUN
    pytest_dir = tmp_path / "pytest-7"  # pytest's numbered folders hold a .lock too
    (pytest_dir / "test_x0").mkdir(parents=True)
    (pytest_dir / ".lock").write_text("")
    project = tmp_path / "project"  # another tool's checkpoints/ is not a vlkd run
    (project / "checkpoints").mkdir(parents=True)
    (project / "checkpoints" / "epoch=3.ckpt").write_text("")
    cache = tmp_path / "cache"  # a --feature-cache-dir is not a store
    cache.mkdir()
    (cache / "features-0123456789abcdef.safetensors").write_bytes(b"")
    assert [folders.kind_of(p) for p in (pytest_dir, project, cache)] == [None, None, None]
    store = tmp_path / "store"
    store.mkdir()
    (store / "extraction.json").write_text("{}")
    export = tmp_path / "export"
    vlkd.export(runs / "a", "safetensors", export)
    assert (folders.kind_of(store), folders.kind_of(export)) == (folders.STORE, folders.EXPORT)
    folders.check_write_into(tmp_path / "new" / "deeper", "--out")  # fine: nothing of vlkd around
    with pytest.raises(UsageError, match="lies inside the feature store"):
        folders.check_write_into(store / "sub", "--out")
