"""Smaller bad-input cases of issue 11 (item 9): each is one clear line naming what is wrong."""
from __future__ import annotations

import pytest
from PIL import Image

from train_helpers import run_cli, invoke_cli


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_eval_of_a_folder_without_checkpoints_speaks_of_eval(tmp_path):
    (tmp_path / "data").mkdir()
    result = invoke_cli(["eval", "data/"], cwd=tmp_path)
    assert result.returncode == 2
    lines = _lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "'data'" in lines[0] and "--resume" not in lines[0], lines[0]


def test_imagefolder_with_an_empty_class_folder_raises_naming_it(tmp_path):
    import vlkd_core
    from vlkd_core.errors import DataError
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "cat" / "0.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"no image files for class folder\(s\) dog"):
        vlkd_core.build_dataset("imagefolder", root=str(tmp_path), split=None)


def test_a_disabled_plugins_component_names_the_plugin():
    from vlkd_core import build_loss, reset_plugin_manager
    from vlkd_core.errors import UnknownComponentError
    try:
        reset_plugin_manager(disable=["clip"])
        with pytest.raises(UnknownComponentError, match="provided by plugin clip, which is disabled"):
            build_loss("infonce")
    finally:
        reset_plugin_manager()


@pytest.mark.slow
def test_disabled_plugin_via_environment_on_the_command_line(tmp_path):
    result = run_cli(["train", "--loss", "infonce", "--max-steps", "1", "--output-dir", str(tmp_path)],
                     env={"VLKD_DISABLE_PLUGINS": "clip"})
    assert result.returncode == 2
    assert "provided by plugin clip, which is disabled" in " ".join(result.stderr.split()), result.stderr


def test_a_misspelt_plugin_to_disable_warns_with_did_you_mean():
    from vlkd_core import reset_plugin_manager
    try:
        with pytest.warns(UserWarning, match="no plugin named 'clipp'.*did you mean clip"):
            reset_plugin_manager(disable=["clipp"])
    finally:
        reset_plugin_manager()


@pytest.mark.parametrize("prefix", ["../x", "sub/x", "/tmp/x", ".."])
def test_to_webdataset_prefix_cannot_leave_the_output_folder(tmp_path, prefix):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    (tmp_path / "data.csv").write_text("filepath,title\na.png,a red square\n")
    out = tmp_path / "out" / "shards"
    result = invoke_cli(["data", "to-webdataset", str(tmp_path / "data.csv"), str(out), "--prefix", prefix])
    assert result.returncode == 2
    lines = _lines(result.stderr)
    assert len(lines) == 1 and "--prefix" in lines[0], result.stderr
    assert not list(tmp_path.rglob("*.tar")) and not list((tmp_path.parent).glob("x-*.tar"))


def test_to_webdataset_output_folder_named_like_a_pipe_stays_a_folder(tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    (tmp_path / "data.csv").write_text("filepath,title\na.png,a red square\n")
    result = invoke_cli(["data", "to-webdataset", str(tmp_path / "data.csv"), "pipe:touch PWNED"], cwd=tmp_path)
    assert not (tmp_path / "PWNED").exists()
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pipe:touch PWNED" / "shard-000000.tar").exists()
