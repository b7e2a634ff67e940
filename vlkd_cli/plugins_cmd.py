"""`vlkd plugins ...`: list, show, new."""
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from vlkd_core._host.kinds import SINGULAR

from .common import console, fail, handle_errors, print_json

app = typer.Typer(help="List, inspect and create vlkd plugins.", no_args_is_help=True)

KIND_CHOICES = list(SINGULAR.values())  # the template renders one example component of each kind
STATUS_STYLE = {"ok": "green", "broken": "bold red", "disabled": "dim"}


def _plugin_rows():
    from vlkd_core import get_plugin_manager
    for info in get_plugin_manager().plugins.values():
        yield {"plugin": info.name, "distribution": info.distribution, "version": info.version,
               "module": info.module, "status": info.status, "error": info.error,
               "registers": info.registered}


def _registers_text(registered: dict) -> str:
    return "\n".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(registered.items())) or "-"


@app.command("list")
@handle_errors
def list_plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """Every plugin found (builtins and the `vlkd` entry-point group), with what it registers."""
    rows = list(_plugin_rows())
    if as_json:
        print_json(rows)
        return
    table = Table(title="vlkd plugins", show_lines=True)
    for col in ("Plugin", "Distribution", "Version", "Registers", "Status"):
        table.add_column(col, overflow="fold")
    for row in rows:
        style = STATUS_STYLE[row["status"]]
        status = f"[{style}]{row['status']}[/]" + (f"\n[red]{row['error']}[/]" if row["error"] else "")
        table.add_row(row["plugin"], row["distribution"], row["version"],
                      _registers_text(row["registers"]), status)
    console.print(table)


@app.command("show")
@handle_errors
def show_plugin(name: str = typer.Argument(..., help="Plugin name, as in `vlkd plugins list`."),
                as_json: bool = typer.Option(False, "--json")):
    """Details of one plugin."""
    from vlkd_core.errors import UnknownComponentError
    rows = {row["plugin"]: row for row in _plugin_rows()}
    if name not in rows:
        raise UnknownComponentError("plugin", name, rows)
    row = rows[name]
    if as_json:
        print_json(row)
        return
    table = Table(show_header=False, title=f"plugin {name}")
    for key in ("plugin", "distribution", "version", "module", "status", "error"):
        table.add_row(key, str(row[key]) or "-")
    table.add_row("registers", _registers_text(row["registers"]))
    console.print(table)


def template_dir() -> Path:
    """The cookiecutter template: shipped inside vlkd_cli (a link to templates/plugin)."""
    shipped = Path(__file__).parent / "plugin_template"
    if (shipped / "cookiecutter.json").exists():
        return shipped
    return Path(__file__).resolve().parents[1] / "templates" / "plugin"


@app.command("new")
@handle_errors
def new_plugin(
    name: str = typer.Argument(..., help="Plugin name, e.g. demo-loss (also the component name)."),
    kind: str = typer.Option("loss", "--kind", "-k", help="What the example component is: " + "|".join(KIND_CHOICES)),
    output_dir: Path = typer.Option(Path("."), "--output-dir", "-o", help="Where to create the package."),
    author: str = typer.Option("Your Name", help="Author for pyproject.toml."),
):
    """Create a new installable plugin package from the template (cookiecutter)."""
    import re
    from cookiecutter.main import cookiecutter
    if kind not in KIND_CHOICES:
        fail(f"--kind '{kind}' must be one of {', '.join(KIND_CHOICES)}")
    if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", name):
        fail(f"plugin name '{name}' must be lowercase letters, digits and dashes (e.g. demo-loss)")
    from vlkd_core._runfiles.folders import check_write_into
    check_write_into(output_dir, "--output-dir")  # never into a run, checkpoint, store or export
    target = output_dir / f"vlkd-{name}"
    if target.exists():
        fail(f"{target} already exists; choose another name or --output-dir")
    out = cookiecutter(str(template_dir()), no_input=True, output_dir=str(output_dir),
                       extra_context={"plugin_name": name, "kind": kind, "author": author})
    console.print(f"[green]created[/] {out}\n  next: pip install -e {out} && vlkd plugins list"
                  f" && pytest {out}/tests")
