"""CLI basics and the promise that listing/help never import heavy libraries."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import vlkd_core
from vlkd_cli.app import app

runner = CliRunner()
HEAVY = ["torch", "open_clip", "transformers", "timm", "sentence_transformers", "adapters",
         "sklearn", "webdataset", "tensorboard"]


def _imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_core_and_cli_is_light():
    assert _imported_after("import vlkd_core, vlkd_cli.app") == []


def test_loading_every_plugin_is_light():
    """Plugins register lazy 'module:attr' factories: building the registry imports no heavy library."""
    assert _imported_after("import vlkd_core; vlkd_core.get_plugin_manager()") == []


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("vlkd ")
    for args in (["--help"], ["plugins", "--help"], ["components", "list", "--help"],
                 ["plugins", "new", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.stdout


def test_components_list_json_and_table():
    result = runner.invoke(app, ["components", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    kinds = {row["kind"] for row in rows}
    assert {"backbones", "heads", "datasets"} <= kinds
    toy = next(r for r in rows if r["kind"] == "backbones" and r["name"] == "toy")
    assert toy["models"] == 2
    table = runner.invoke(app, ["components", "list", "heads"])
    assert table.exit_code == 0 and "mlp" in table.stdout


def test_components_show_lists_options_with_defaults():
    result = runner.invoke(app, ["components", "show", "head", "mlp", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["options"]["layers"] == 2 and info["options"]["activation"] == "gelu"
    assert set(info["required"]) == {"in_dim", "out_dim"}


def test_unknown_kind_is_a_usage_error():
    result = runner.invoke(app, ["components", "list", "lossez"])
    assert result.exit_code == 2 and "did you mean losses" in result.output


@pytest.mark.parametrize("spec, family, model", [
    ("openclip:RN50", "openclip", "RN50"),
    ("hf:sentence-transformers/all-MiniLM-L6-v2", "hf", "sentence-transformers/all-MiniLM-L6-v2"),
    ("openclip:hf-hub:timm/ViT-B-16", "openclip", "hf-hub:timm/ViT-B-16"),
])
def test_backbone_spec_parsing(spec, family, model):
    parsed = vlkd_core.parse_backbone_spec(spec)
    assert (parsed.family, parsed.model) == (family, model)


@pytest.mark.parametrize("bad", ["RN50", ":RN50", "openclip:", ""])
def test_bad_backbone_specs(bad):
    with pytest.raises(vlkd_core.UsageError, match="family:model"):
        vlkd_core.parse_backbone_spec(bad, flag="--image")


def test_unknown_model_in_family_suggests():
    with pytest.raises(vlkd_core.UnknownComponentError, match="did you mean tiny"):
        vlkd_core.build_backbone("toy:tinny")


def test_weighted_names():
    assert vlkd_core.parse_weighted_names("infonce:1.0, simreg:0.5,seed") == [
        ("infonce", 1.0), ("simreg", 0.5), ("seed", 1.0)]
    with pytest.raises(vlkd_core.UsageError, match="'simreg:x'"):
        vlkd_core.parse_weighted_names("simreg:x")


def test_the_entry_points_skip_the_final_collection():
    """`vlkd` (console script), `python -m vlkd_cli` and the torchrun wrapper end with gc frozen:
    the interpreter's last collection over torch's objects costs ~1.4 s a process (see
    benchmarks/cli_startup.py). `main`, which tests call in their own process, freezes nothing."""
    from importlib.metadata import entry_points
    assert [ep.value for ep in entry_points(group="console_scripts", name="vlkd")] == ["vlkd_cli.app:run"]
    probe = ("import atexit, gc, sys\natexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
             "sys.argv = ['vlkd', '--version']\nfrom vlkd_cli.app import {}\n{}()")
    for function, frozen in (("run", True), ("main", False)):
        out = subprocess.run([sys.executable, "-c", probe.format(function, function)], capture_output=True,
                             text=True)
        assert out.stdout.splitlines()[-1] == f"frozen {frozen}", (function, out.stdout, out.stderr)
    wrapper = subprocess.run([sys.executable, "-m", "vlkd_cli.torchrun", "--help"], capture_output=True, text=True)
    assert wrapper.returncode == 0 and "--nproc-per-node" in wrapper.stdout, wrapper.stderr


@pytest.mark.parametrize("command", [
    ["train", "--image", "toy:tiny", "--text", "toy:tiny", "--data-option", "length=64"],
    ["features", "extract", "--data", "shapes", "--data-option", "length=32", "--text", "toy:tiny"],
])
def test_a_multi_process_launcher_imports_no_torch(tmp_path, command):
    """The process that starts torchrun only checks the command line: torch (~3 s here) is
    imported by the workers alone. The probe stops at the launch and reports what was imported."""
    out_flag = ["--out", str(tmp_path / "store")] if command[0] == "features" else ["--output-dir", str(tmp_path)]
    argv = ["vlkd", *command, *out_flag, "--nproc-per-node", "2"]
    probe = ("import json, sys\nimport vlkd_cli.launch as launch\n"
             "def stop(cmd, env):\n    print(json.dumps([m for m in %r if m in sys.modules] + cmd[2:3]))\n    return 0\n"
             "launch.run_forwarding_signals = stop\nsys.argv = %r\nfrom vlkd_cli.app import main\nmain()") % (HEAVY, argv)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["vlkd_cli.torchrun"]
