"""The layering rules of docs/architecture.md, checked on the code itself."""
import ast
import dataclasses
import re
from pathlib import Path

import vlkd_core as vlkd
from typer.testing import CliRunner
from vlkd_core.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60


def _python_files(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_function_in_the_core_or_the_cli_is_longer_than_60_lines():
    long = []
    for path in _python_files("vlkd_core", "vlkd_cli"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def _plugin_names() -> set[str]:
    """Names of the entry-point plugins and of every component they register."""
    names = set()
    for name, info in vlkd.get_plugin_manager().plugins.items():
        if info.builtin:
            continue
        names.add(name)
        names.update(c for kind, comps in info.registered.items() if kind != "hooks" for c in comps)
    return names


def test_the_core_never_branches_on_or_builds_a_plugin_by_name():
    """No comparison against a plugin's (or its components') name, and no build_*/get_component
    call naming one: capabilities come through LossNeeds and registration metadata."""
    names = _plugin_names()
    assert {"infonce", "dino", "unicl", "openclip"} <= names  # the check sees the plugins
    found = []
    for path in _python_files("vlkd_core"):
        for node in ast.walk(ast.parse(path.read_text())):
            parts = []
            if isinstance(node, ast.Compare):
                parts = [node.left, *node.comparators]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")).startswith(("build_", "get_component")):
                parts = node.args
            for part in parts:
                for sub in ast.walk(part):
                    if isinstance(sub, ast.Constant) and sub.value in names:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} '{sub.value}'")
    assert not found, found


def _defaults() -> dict[str, object]:
    out = {}
    for f in dataclasses.fields(TrainConfig):
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if value not in (None, [], {}) and not isinstance(value, bool):
            out[f.name] = value
    return out


def test_each_training_default_is_written_once():
    """Help texts, the CLI and the engine do not repeat a training default (help is generated
    from the field; evaluators have defaults of their own, e.g. k-NN's k)."""
    patterns = {key: re.compile(rf"default:?\s*{re.escape(str(value))}\b") for key, value in _defaults().items()}
    repeated = []
    for path in _python_files("vlkd_core/training", "vlkd_cli"):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                repeated += [f"{path.relative_to(ROOT)}:{node.lineno} {key}" for key, p in patterns.items()
                             if p.search(node.value)]
    assert not repeated, repeated


def test_train_help_lists_every_option_with_its_default():
    from vlkd_cli.app import app
    text = " ".join(CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"}).output.split())
    for f in dataclasses.fields(TrainConfig):
        flag = f.metadata["option"].flag(f.name)
        assert flag in text, flag
    for key, value in _defaults().items():
        shown = " ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        assert f"(default: {shown})" in text, key
