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


# --- the core asks towers, never looks inside them -------------------------------------------

def _self_attributes(cls: ast.ClassDef) -> set[str]:
    """The names a class defines: class-level names, methods, and every ``self.X`` it assigns."""
    names = {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in cls.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id == "self":
            names.add(node.attr)
    return names


def _plugin_tower_attributes() -> dict[str, str]:
    """Attribute name -> the plugin tower class defining it, for the names no module of the core
    defines (nor nn.Module): the towers' own internals (``visual``, ``st``, ``processor``, ...),
    as opposed to the contract and the abilities the core may use (``modality``,
    ``image_spec``, ``exports_as``, ...). A tower class is a plugin class declaring ``modality``."""
    from torch import nn
    core = set(dir(nn.Module))
    for path in _python_files("vlkd_core"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                core.add(node.name)
            if isinstance(node, ast.ClassDef):
                core |= _self_attributes(node)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                core.add(node.attr)
    found: dict[str, str] = {}
    for path in sorted(ROOT.glob("plugins/*/vlkd_*/**/*.py")):
        for cls in ast.walk(ast.parse(path.read_text())):
            if isinstance(cls, ast.ClassDef) and "modality" in _self_attributes(cls):
                for name in _self_attributes(cls) - core:
                    found.setdefault(name, f"{path.relative_to(ROOT)}::{cls.name}")
    return found


def _inside_fstring(tree: ast.AST) -> set[int]:
    return {id(sub) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for sub in ast.walk(node)}


def test_the_core_never_inspects_a_plugins_towers():
    """What a tower can do reaches the core through the contract and the abilities
    (vlkd_core.abilities: e.g. ``exports_as`` for export formats), never by reading a plugin
    tower's own attributes (``tower.visual``, ``getattr(tower, "promptbert")``) or by the module
    a class comes from (``type(m).__module__ == "open_clip"``; ``__module__`` may only be
    shown, inside an f-string)."""
    private = _plugin_tower_attributes()
    assert {"visual", "st", "processor", "promptbert"} <= set(private), private  # the check sees them
    found = []
    for path in _python_files("vlkd_core", "vlkd_cli"):
        tree = ast.parse(path.read_text())
        shown = _inside_fstring(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute) and node.attr == "__module__" and id(node) not in shown:
                found.append(f"{where} reads __module__ to decide something")
            elif isinstance(node, ast.Attribute) and node.attr in private:
                found.append(f"{where} .{node.attr} (an attribute of {private[node.attr]})")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("getattr", "hasattr", "setattr") \
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in private:
                found.append(f"{where} {node.func.id}(..., {node.args[1].value!r}) (an attribute of "
                             f"{private[node.args[1].value]})")
    assert not found, found
