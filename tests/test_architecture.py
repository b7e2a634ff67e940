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
    (vlkd_core._model.abilities: e.g. ``exports_as`` for export formats), never by reading a plugin
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


# --- imports: no circle through the run config ------------------------------------------------

def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports, at the top or inside a function (a lazy
    import still runs, so it counts). Edges go to the module named, not to its parent packages."""
    def name(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    modules = {name(p): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module
                found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                          for alias in node.names}
        graph[module] = {m for m in found if m in modules and m != module}
    return graph


def _circle(graph: dict[str, set[str]], module: str) -> list[str] | None:
    """A shortest import path from ``module`` back to itself, or None."""
    paths = {nxt: [module, nxt] for nxt in sorted(graph[module])}
    queue = list(paths)
    while queue:
        current = queue.pop(0)
        if current == module:
            return paths[current]
        for nxt in sorted(graph[current]):
            if nxt not in paths:
                paths[nxt] = paths[current] + [nxt]
                queue.append(nxt)
    return None


def test_the_import_graph_sees_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {"__init__.py": "from .a import x\n", "a.py": "def f():\n    from .sub import b\n",
             "sub/__init__.py": "", "sub/b.py": "from .. import c\nimport os\n",
             "sub/c.py": "", "c.py": "import pkg.a\n"}
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    graph = import_graph(pkg)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": set(),
                     "pkg.sub.b": {"pkg.c"}, "pkg.sub.c": set(), "pkg.c": {"pkg.a"}}
    assert _circle(graph, "pkg.a") == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    assert _circle(graph, "pkg") is None


def test_the_run_config_evals_and_training_sources_import_no_circle():
    """training/config.py -> evals.py -> sources.py -> config.py was a circle hidden by lazy
    imports: the evaluators a run's data suggests are read from --data by the grammar, not
    through the training sources (which build the data from a TrainConfig)."""
    graph = import_graph(ROOT / "vlkd_core")
    assert "vlkd_core.training.evals" in graph["vlkd_core.training.config"]  # the check sees the edge
    circles = [_circle(graph, f"vlkd_core.training.{m}") for m in ("evals", "sources")]
    assert circles == [None, None], [" -> ".join(c) for c in circles if c]


# --- the layout: a public surface, the rest private by role ----------------------------------

PUBLIC_MODULES = {"__init__", "api", "sdk", "hookspecs", "contracts", "errors", "testing", "safety"}
PRIVATE_PACKAGES = {"_host", "_runtime", "_runfiles", "_model"}
SUBPACKAGES = {"training", "evaluation", "features", "exports", "datasets", "report", "builtins", "data"}


def test_every_core_module_is_public_or_in_a_package_by_role():
    """The top level of vlkd_core is its public surface (docs/architecture.md, Layout); every
    other module lives in a private package named for its role, or in a named sub-package."""
    core = ROOT / "vlkd_core"
    stray = sorted(p.name for p in core.glob("*.py") if p.stem not in PUBLIC_MODULES)
    assert not stray, f"move into a package by role ({', '.join(sorted(PRIVATE_PACKAGES))}): {stray}"
    folders = {p.name for p in core.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders - PRIVATE_PACKAGES - SUBPACKAGES == set(), folders
    for name in PRIVATE_PACKAGES:
        doc = ast.get_docstring(ast.parse((core / name / "__init__.py").read_text())) or ""
        assert "private" in doc and "\n" not in doc, f"{name}/__init__.py: one line saying its role, private"


def _jinja_masked(text: str) -> str:
    """The template's Jinja markup replaced, length for length, so the file parses as Python."""
    text = re.sub(r"\{%.*?%\}", lambda m: "#" + " " * (len(m.group()) - 1), text)
    return re.sub(r"\{\{.*?\}\}", lambda m: "x" * len(m.group()), text)


def _private_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):  # function-level imports included
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.lineno, node.module))
            if node.module == "vlkd_core":
                found += [(node.lineno, f"vlkd_core.{a.name}") for a in node.names]
    return [(line, name) for line, name in found
            if name.startswith("vlkd_core.") and name.split(".")[1].startswith("_")
            and not name.split(".")[1].startswith("__")]


def test_no_plugin_imports_a_private_core_module():
    """Plugins, and the template third parties start from, import the SDK (and the public
    modules), never vlkd_core._anything."""
    paths = sorted(ROOT.glob("plugins/**/*.py")) + sorted((ROOT / "templates").rglob("*.py"))
    assert len(paths) > 50
    found = []
    for path in paths:
        text = path.read_text()
        tree = ast.parse(_jinja_masked(text) if "templates" in path.parts else text)
        found += [f"{path.relative_to(ROOT)}:{line} {name}" for line, name in _private_imports(tree)]
    assert not found, found


def test_every_sdk_name_resolves():
    import vlkd_core.sdk as sdk
    missing = []
    for name in sdk.__all__:
        try:
            getattr(sdk, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert not missing, missing


def test_the_sdk_exports_every_tower_ability():
    """Each optional tower ability is a Protocol a plugin can name through the SDK."""
    import vlkd_core.sdk as sdk
    from vlkd_core._model import abilities
    protocols = {name for name, value in vars(abilities).items() if isinstance(value, type)
                 and getattr(value, "_is_protocol", False) and value.__module__ == abilities.__name__}
    assert len(protocols) >= 10 and protocols <= set(sdk.__all__), protocols - set(sdk.__all__)
