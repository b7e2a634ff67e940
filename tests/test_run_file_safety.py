"""A run folder or checkpoint is data: nothing read from it may run a command. pipe:/remote shard
URLs are honoured only when typed on the command line together with --allow-pipe."""
from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from train_helpers import TINY, TOWERS, invoke_cli


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = invoke_cli(["train", *TINY, "--loss", "infonce", "--teacher", "none", "--epochs", "1",
                      "--data-option", "length=64", "--output-dir", str(root), "--name", "r"])
    assert result.returncode == 0, result.stderr
    return root / "r"


def _edit_saved_config(run: Path, **changes) -> None:
    """What a malicious sender does: edit the saved configs (and any checksums beside them)."""
    for meta_path in (run / "checkpoints").glob("step-*/meta.json"):
        meta = json.loads(meta_path.read_text())
        meta["config"].update(changes)
        meta_path.write_text(json.dumps(meta))
        manifest = meta_path.parent / "manifest.json"
        if manifest.exists():
            listing = json.loads(manifest.read_text())
            listing["files"]["meta.json"] = {"size": meta_path.stat().st_size,
                                             "sha256": hashlib.sha256(meta_path.read_bytes()).hexdigest()}
            manifest.write_text(json.dumps(listing))
    config = run / "config.json"
    config.write_text(json.dumps(dict(json.loads(config.read_text()), **changes)))


def _copy_run(run: Path, dest: Path) -> Path:
    import shutil
    shutil.copytree(run, dest)
    return dest


@pytest.mark.slow
def test_eval_never_runs_a_pipe_from_the_checkpoint_config(tiny_run, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "received")
    pwned = tmp_path / "PWNED"
    url = f"pipe:touch {pwned}"
    _edit_saved_config(run, eval=[f"retrieval:dataset=webdataset,split=train,dataset.path={url}"])
    for extra in ([], ["--allow-pipe"]):  # the opt-in covers the command line only, never run files
        result = invoke_cli(["eval", str(run), *extra])
        assert result.returncode != 0
        assert not pwned.exists()
        line = one_line_error(result)
        assert url in line and "--allow-pipe" in line, line


@pytest.mark.slow
def test_resume_never_runs_a_pipe_from_the_saved_data_options(tiny_run, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "runs" / "received")
    pwned = tmp_path / "PWNED"
    url = f"pipe:touch {pwned}"
    _edit_saved_config(run, data="webdataset", data_options={"path": url}, epochs=3)
    result = invoke_cli(["train", "--resume", "latest", "--output-dir", str(tmp_path / "runs"),
                      "--name", "received", "--allow-pipe"])
    assert result.returncode != 0
    assert not pwned.exists()
    assert url in one_line_error(result)


def test_config_file_pipe_is_refused_even_with_the_flag(tmp_path):
    pwned = tmp_path / "PWNED"
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"data": "webdataset", "data_options": {"path": f"pipe:touch {pwned}"}}))
    result = invoke_cli(["train", *TOWERS, "--config", str(config), "--allow-pipe", "--max-steps", "1",
                      "--output-dir", str(tmp_path / "runs")])
    assert result.returncode != 0
    assert not pwned.exists()
    assert f"pipe:touch {pwned}" in one_line_error(result)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "eval"])
def test_pipe_on_the_command_line_needs_the_opt_in_flag(tiny_run, tmp_path, command):
    pwned = tmp_path / "PWNED"
    url = f"pipe:touch {pwned}"
    if command == "train":
        args = ["train", *TOWERS, "--data", "webdataset", "--data-option", f"path={url}",
                "--max-steps", "1", "--output-dir", str(tmp_path / "runs")]
    else:
        args = ["eval", str(tiny_run), "--eval", f"retrieval:dataset=webdataset,split=train,dataset.path={url}"]
    result = invoke_cli(args)
    assert result.returncode == 2
    assert not pwned.exists()
    line = one_line_error(result)
    assert url in line and "--allow-pipe" in line, line


def _shard(tmp_path: Path) -> Path:
    """A 32-sample webdataset shard of coloured squares."""
    shard = tmp_path / "shard-000000.tar"
    colours = ["red", "green", "blue", "yellow"]
    with tarfile.open(shard, "w") as tar:
        for i in range(32):
            img = tmp_path / f"{i:04d}.png"
            Image.new("RGB", (32, 32), colours[i % 4]).save(img)
            txt = tmp_path / f"{i:04d}.txt"
            txt.write_text(f"a {colours[i % 4]} square")
            tar.add(img, arcname=img.name)
            tar.add(txt, arcname=txt.name)
    return shard


@pytest.mark.slow
def test_pipe_typed_with_allow_pipe_is_honoured(tmp_path):
    shard = _shard(tmp_path)
    result = invoke_cli(["train", *TOWERS, "--loss", "infonce", "--teacher", "none", "--data", "webdataset",
                      "--data-option", f"path=pipe:cat {shard}", "--data-option", "shuffle=0",
                      "--max-steps", "2", "--batch-size", "8", "--allow-pipe",
                      "--output-dir", str(tmp_path / "runs"), "--name", "piped"])
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "runs" / "piped" / "summary.json").read_text())["steps"] == 2


@pytest.mark.slow
def test_report_never_runs_a_pipe_from_the_saved_data_options(tiny_run, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "received")
    pwned = tmp_path / "PWNED"
    url = f"pipe:touch {pwned}"
    _edit_saved_config(run, data="webdataset", data_options={"path": url})
    result = invoke_cli(["report", str(run)])
    assert result.returncode != 0
    assert not pwned.exists()
    assert url in one_line_error(result)
