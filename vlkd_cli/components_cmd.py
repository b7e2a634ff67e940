"""`vlkd components ...`: list and show registered components."""
import inspect
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import console, handle_errors, print_json

app = typer.Typer(help="List and describe registered backbones, heads, losses, datasets, evaluators.",
                  no_args_is_help=True)


@app.command("list")
@handle_errors
def list_cmd(kind: Optional[str] = typer.Argument(None, help="backbones|heads|losses|datasets|evaluators"),
             as_json: bool = typer.Option(False, "--json")):
    """Registered components (all kinds, or one). Backbone families show how many models they offer."""
    from vlkd_core import get_component, list_components
    from vlkd_core.registry import KINDS, normalize_kind
    kinds = [normalize_kind(kind)] if kind else list(KINDS)
    rows = []
    for k in kinds:
        for item in list_components(k):
            row = {"kind": k, "name": item.name, "plugin": item.plugin,
                   "distribution": item.distribution, "description": item.description}
            if k == "backbones":
                try:
                    models = get_component(k, item.name).models()
                    row["models"] = "any" if models is None else len(models)
                except Exception as exc:  # a family whose library is missing: say so, keep going
                    row["models"] = f"unavailable ({type(exc).__name__}: {exc})"
            rows.append(row)
    if as_json:
        print_json(rows)
        return
    table = Table(title="vlkd components")
    cols = ["kind", "name", "plugin", "distribution"] + (["models"] if "backbones" in kinds else []) + ["description"]
    for col in cols:
        table.add_column(col.capitalize(), overflow="fold")
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in cols))
    console.print(table)


@app.command("show")
@handle_errors
def show_cmd(kind: str = typer.Argument(..., help="backbone|head|loss|dataset|evaluator"),
             name: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")):
    """A component's description, options with defaults, formula and paper reference."""
    from vlkd_core import factory_options, get_component
    comp = get_component(kind, name)
    factory = comp.resolve()
    options = {k: (None if v is inspect.Parameter.empty else v) for k, v in factory_options(comp).items()}
    required = [k for k, v in factory_options(comp).items() if v is inspect.Parameter.empty]
    info = {
        "kind": comp.kind, "name": comp.name, "plugin": comp.plugin,
        "distribution": comp.distribution, "version": comp.version,
        "description": (inspect.getdoc(factory) or comp.description or "").strip(),
        "formula": comp.metadata.get("formula") or getattr(factory, "formula", ""),
        "paper": comp.metadata.get("paper") or getattr(factory, "paper", ""),
        "options": options, "required": required,
    }
    if comp.metadata.get("evals"):
        info["evals"] = list(comp.metadata["evals"])  # what a run training on this data evaluates
    needs = getattr(factory, "needs", None)
    if needs is not None:
        info["needs"] = {k: getattr(needs, k) for k in needs.__dataclass_fields__}
    if as_json:
        print_json(info)
        return
    table = Table(show_header=False, title=f"{comp.kind[:-1] if comp.kind != 'losses' else 'loss'} {name}")
    for key in ("plugin", "distribution", "version", "description", "formula", "paper"):
        if info[key]:
            table.add_row(key, escape(str(info[key])))  # docstrings hold [B, D]: not markup
    if "needs" in info:
        table.add_row("needs", ", ".join(k for k, v in info["needs"].items() if v) or "-")
    if "evals" in info:
        table.add_row("default --eval", escape("\n".join(info["evals"])))
    console.print(table)
    opts = Table(title="options")
    opts.add_column("option")
    opts.add_column("default")
    for key, value in options.items():
        opts.add_row(key, "[red]required[/]" if key in required else repr(value))
    console.print(opts)
