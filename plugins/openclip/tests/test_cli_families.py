"""The CLI lists the backbone families of the first-party plugins with their model counts."""
import json

import open_clip
import timm
import torchvision
from typer.testing import CliRunner

from vlkd_cli.app import app


def test_components_list_shows_each_family_with_its_model_count():
    result = CliRunner().invoke(app, ["components", "list", "backbones", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["openclip"]["models"] == len(open_clip.list_models())
    assert rows["torchvision"]["models"] == len(torchvision.models.list_models(module=torchvision.models))
    assert rows["timm"]["models"] == len(timm.list_models())
    assert rows["hf"]["models"] == "any"
    table = CliRunner().invoke(app, ["components", "list", "backbones"])
    assert table.exit_code == 0 and "openclip" in table.stdout and "torchvision" in table.stdout


def test_wrong_model_name_is_a_usage_error_with_a_suggestion():
    import vlkd_core as vlkd
    from vlkd_core.errors import UsageError
    try:
        vlkd.build_backbone("openclip:RN51")
    except UsageError as exc:
        assert "did you mean RN50" in str(exc) and exc.exit_code == 2
    else:
        raise AssertionError("openclip:RN51 was accepted")


def test_train_with_a_wrong_backbone_name_exits_2(tmp_path):
    import pytest
    from vlkd_cli.app import app as cli
    args = ["train", "--image", "openclip:RN51", "--text", "toy:tiny", "--max-steps", "1",
            "--output-dir", str(tmp_path), "--eval", "none", "--no-progress"]
    result = CliRunner().invoke(cli, args)
    if "No such command" in result.output:
        pytest.skip("no `vlkd train` command in this checkout")
    if "did you mean RN50" not in result.output and "unknown loss" in result.output:
        pytest.skip("the default loss plugin is not installed, train stops before the towers")
    assert result.exit_code == 2, result.output
    assert "did you mean RN50" in result.output
