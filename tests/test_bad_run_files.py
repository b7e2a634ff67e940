"""The weak spots of issue 23, each now one line naming the file, flag or row, before any run
folder exists where the input is read up front: non-UTF-8 LATEST / meta.json / --config files,
hand-edited feature-store manifests, a caption changed after `vlkd features extract`, loss and
data weights that are not finite and > 0; and one exit code (2) for bad input in every command."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from export_runs import train_run
from PIL import Image
from typer.testing import CliRunner

from test_run_folder_fuzz import reseal
from train_helpers import TOWERS
from vlkd_core.errors import UsageError
from vlkd_core.training import checkpoint as ckpt

EVAL = "retrieval:dataset=shapes,dataset.size=32,dataset.length=16"
NOT_UTF8 = b"\xff\xfe step-\xc3\x28"


def cli(*args):
    from vlkd_cli.app import app
    result = CliRunner().invoke(app, [str(a) for a in args])
    ckpt.release()
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("runs"), "r", max_steps=4, save_every=2)


@pytest.fixture
def copy(run, tmp_path):
    shutil.copytree(run, tmp_path / "runs" / "r")
    return tmp_path / "runs" / "r"


# -- files that are not UTF-8 ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_non_utf8_latest_falls_back_to_the_newest_valid_checkpoint(copy):
    latest = copy / "checkpoints" / "LATEST"
    latest.write_bytes(NOT_UTF8)
    result = cli("eval", copy, "--eval", EVAL)
    assert result.exit_code == 0
    [warning] = lines(result)
    assert warning.startswith(f"warning: '{latest}' is not UTF-8 text") and warning.endswith("using step-0000004")
    result = cli("train", "--resume", "latest", "--output-dir", copy.parent, "--name", "r", "--max-steps", "5", "--no-progress")
    assert result.exit_code == 0 and len(lines(result)) == 1, result.stderr
    for step in ("step-0000004", "step-0000005"):  # nothing valid left: one line naming LATEST and what was skipped
        (copy / "checkpoints" / step / "weights.safetensors").write_bytes(b"")
    latest.write_bytes(NOT_UTF8)
    result = cli("eval", copy, "--eval", EVAL)
    assert result.exit_code == 2
    [error] = lines(result)
    assert error.startswith(f"error: no valid checkpoint in '{copy}'") and "LATEST" in error and "not UTF-8" in error


@pytest.mark.slow
def test_a_non_utf8_meta_json_vouched_for_by_its_manifest_is_skipped_in_one_line(copy):
    for step in ("step-0000002", "step-0000004"):
        (copy / "checkpoints" / step / "meta.json").write_bytes(NOT_UTF8)
        reseal(copy / "checkpoints" / step)
    result = cli("eval", copy, "--eval", EVAL)
    assert result.exit_code == 2
    [error] = lines(result)
    assert "skipped step-0000004 (meta.json is unreadable)" in error and "skipped step-0000002" in error
    with pytest.raises(UsageError, match="meta.json' is not UTF-8 text"):
        ckpt.read_meta(copy / "checkpoints" / "step-0000004")


def test_a_non_utf8_config_file_is_one_line_naming_it(tmp_path):
    config = tmp_path / "run.toml"
    config.write_bytes(b"lr = 0.1\n# caf\xe9\n")
    result = cli("train", "--config", config, "--output-dir", tmp_path / "runs", "--name", "x")
    assert result.exit_code == 2
    [error] = lines(result)
    assert error.startswith(f"error: '{config}' is not UTF-8 text (it holds 'lr = 0.1"), error
    assert not (tmp_path / "runs").exists()


# -- weights ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, value", [("--loss", "infonce:-1"), ("--loss", "infonce:0"), ("--loss", "infonce:nan"),
                                         ("--loss", "infonce:inf"), ("--loss", "infonce:1,simcse:-0.5"),
                                         ("--data", "shapes:nan"), ("--data", "shapes:inf"), ("--data", "shapes:0")])
def test_loss_and_data_weights_must_be_finite_and_positive(tmp_path, flag, value):
    result = cli("train", *TOWERS, "--teacher", "none", "--loss", "infonce", flag, value, "--max-steps", "1",
                 "--output-dir", tmp_path / "runs", "--name", "w")
    assert result.exit_code == 2
    [error] = lines(result)
    assert error.startswith(f"error: {flag} '") and "must be a finite number > 0" in error, error
    assert not (tmp_path / "runs").exists()


# -- feature stores -------------------------------------------------------------------------------
def _csv(folder: Path, captions: list[str]) -> Path:
    folder.mkdir(exist_ok=True)
    for i in range(len(captions)):
        Image.new("RGB", (24, 24), (40 * i, 90, 200 - 20 * i)).save(folder / f"{i}.png")
    path = folder / "pairs.csv"
    path.write_text("filepath,title\n" + "".join(f"{i}.png,{c}\n" for i, c in enumerate(captions)))
    return path


CAPTIONS = [f"a {c} square number {i}" for i, c in enumerate(["red", "green", "blue", "yellow"] * 4)]


def _store(tmp_path: Path, csv: Path) -> Path:
    out = tmp_path / "store"
    result = cli("features", "extract", "--data", "csv", "--data-option", f"path={csv}", "--text", "toy:tiny",
                 "--out", out, "--shard-size", "8", "--no-progress")
    assert result.exit_code == 0, result.stderr
    return out


def _train_from(store: Path, csv: Path, out: Path):
    return cli("train", "--image", "toy:tiny", "--text", "toy:tiny", "--image-option", "image_size=32",
               "--image-head", "none", "--loss", "simreg", "--teacher", "text", "--teacher-features", store,
               "--data", "csv", "--data-option", f"path={csv}", "--batch-size", "8", "--max-steps", "1",
               "--eval", "none", "--no-progress", "--output-dir", out, "--name", "s")


@pytest.mark.slow
def test_a_caption_changed_after_extraction_stops_before_the_first_step(tmp_path):
    csv = _csv(tmp_path / "data", CAPTIONS)
    store = _store(tmp_path, csv)
    assert _train_from(store, csv, tmp_path / "ok").exit_code == 0
    csv.write_text(csv.read_text().replace("number 13", "number thirteen"))
    result = _train_from(store, csv, tmp_path / "runs")
    assert result.exit_code == 2
    [error] = lines(result)
    assert f"teacher feature store '{store}'" in error and "--data-option path changed since the store was extracted" in error
    assert not (tmp_path / "runs").exists()


MANIFEST_EDITS = {
    "wrong type": (lambda m: m.update(width="64"), "the manifest's 'width' is \"64\", not a number"),
    "missing key": (lambda m: m.pop("dtype"), "the manifest has no 'dtype'"),
    "shard list cut short": (lambda m: m.update(shards=m["shards"][:1]), "lists 1 shards of the extraction's 2"),
    "shard not a table": (lambda m: m["shards"].__setitem__(1, "features-000001.safetensors"), "shards[1] is not a table"),
    "shard path": (lambda m: m["shards"][0].update(file="../features-000000.safetensors"), "not a feature shard name"),
    "count off": (lambda m: m.update(count=m["count"] + 1), "not its count"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MANIFEST_EDITS))
def test_a_hand_edited_store_manifest_is_one_line_before_the_run_folder_exists(tmp_path, case):
    csv = _csv(tmp_path / "data", CAPTIONS)
    store = _store(tmp_path, csv)
    manifest = json.loads((store / "manifest.json").read_text())
    edit, words = MANIFEST_EDITS[case]
    edit(manifest)
    (store / "manifest.json").write_text(json.dumps(manifest))
    result = _train_from(store, csv, tmp_path / "runs")
    assert result.exit_code == 2
    [error] = lines(result)
    assert error.startswith(f"error: teacher feature store '{store}'") and words in error, error
    assert not (tmp_path / "runs").exists()


# -- one exit code for bad input ----------------------------------------------------------------------
@pytest.mark.slow
def test_bad_input_exits_2_in_every_command(copy, tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("filepath,title\na.png\n")  # a row missing its caption: a DataError
    (copy / "checkpoints" / "step-0000004" / "meta.json").write_bytes(NOT_UTF8)
    commands = [
        ["train", *TOWERS, "--data", "csv", "--data-option", f"path={bad_csv}", "--output-dir", tmp_path / "o"],
        ["data", "to-webdataset", bad_csv, tmp_path / "shards"],
        ["features", "extract", "--data", "csv", "--data-option", f"path={bad_csv}", "--text", "toy:tiny",
         "--out", tmp_path / "store"],
        ["eval", tmp_path / "nowhere", "--eval", EVAL],
        ["export", copy, "--format", "open_clip", "--out", tmp_path / "e"],
        ["report", tmp_path / "nowhere"],
        ["plugins", "new", "Bad_Name"],
        ["train", "--lr", "abc"],
    ]
    for args in commands:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.exit_code, result.stderr)


@pytest.mark.slow
def test_report_never_writes_through_a_link_and_skips_damaged_metrics_lines(copy, tmp_path):
    from vlkd_core.report.build import _records
    outside = tmp_path / "outside.html"
    outside.write_text("mine")
    (copy / "report.html").symlink_to(outside)
    result = cli("report", copy)
    assert result.exit_code == 2 and "holds 'report.html', a symbolic link" in lines(result)[0]
    assert outside.read_text() == "mine"
    metrics = copy / "metrics.jsonl"
    good = _records(copy)
    metrics.write_bytes(metrics.read_bytes() + b'{"type": "train", "step": \xff\n[1, 2]\n')
    assert _records(copy) == good != []
