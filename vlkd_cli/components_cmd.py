"""`vlkd components ...`: list and show registered components."""
import inspect
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import console, handle_errors, print_json

from vlkd_core._host.kinds import KINDS, SINGULAR

app = typer.Typer(help=f"List and describe registered {', '.join(KINDS)}.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_cmd(kind: Optional[str] = typer.Argument(None, help="|".join(KINDS)),
             as_json: bool = typer.Option(False, "--json")):
    """Registered components (all kinds, or one). Backbone families show how many models they offer."""
    from vlkd_core import get_component, list_components
    from vlkd_core._host.registry import normalize_kind
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
def show_cmd(kind: str = typer.Argument(..., help="|".join(SINGULAR.values())),
             name: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")):
    """A component's description, options with defaults (inherited ones too), formula and paper."""
    from vlkd_core import get_component
    comp = get_component(kind, name)
    info = _show_info(comp)
    if as_json:
        print_json(info)
        return
    table = Table(show_header=False, title=f"{SINGULAR[comp.kind]} {name}")
    for key in ("plugin", "distribution", "version", "description", "formula", "paper"):
        if info[key]:
            table.add_row(key, escape(str(info[key])))  # docstrings hold [B, D]: not markup
    if "needs" in info:
        table.add_row("needs", ", ".join(k for k, v in info["needs"].items() if v) or "-")
    if "evals" in info:
        table.add_row("default --eval", escape("\n".join(info["evals"])))
    if "per_parameter" in info:
        table.add_row("--optimizer-in-backward", "yes: one instance per parameter" if info["per_parameter"] else "no")
    for key, title in (("job", "applies while"), ("values", "sets")):
        if key in info:  # recipes
            table.add_row(title, escape("\n".join(f"{k} = {v!r}" for k, v in info[key].items())))
    console.print(table)
    if not (info["options"] or info["set_by_engine"]):
        return
    opts = Table(title="options")
    for column in ("option", "default", "declared by"):
        opts.add_column(column)
    for key, value in info["options"].items():
        default = "[red]required[/]" if key in info["required"] else escape(repr(value))
        opts.add_row(key, default, info["declared_by"][key])
    for key in info["set_by_engine"]:
        opts.add_row(key, "[dim]set by the engine[/]", info["declared_by"][key])
    console.print(opts)


def _show_info(comp) -> dict:
    """Everything `show` prints, as plain data (also the --json output)."""
    from vlkd_core.api import engine_options
    from vlkd_core._host.describe import options, plain_text
    factory = comp.resolve()
    every = options(factory)
    engine = engine_options(comp)  # the towers' widths, an optimizer's groups: not user options
    found = [o for o in every if o.name not in engine]
    info = {
        "kind": comp.kind, "name": comp.name, "plugin": comp.plugin,
        "distribution": comp.distribution, "version": comp.version,
        "description": plain_text(inspect.getdoc(factory) or comp.description or ""),
        "formula": comp.info.formula or getattr(factory, "formula", ""),
        "paper": comp.info.paper or getattr(factory, "paper", ""),
        "options": {o.name: None if o.required else o.default for o in found},
        "required": [o.name for o in found if o.required],
        "set_by_engine": [o.name for o in every if o.name in engine],
        "declared_by": {o.name: o.declared_by for o in every},
    }
    if comp.info.evals:
        info["evals"] = list(comp.info.evals)  # what a run training on this data evaluates
    if comp.kind == "optimizers":
        info["per_parameter"] = comp.info.per_parameter  # may run under --optimizer-in-backward
    if comp.kind == "recipes":
        from vlkd_core.training.recipes import get_recipe
        recipe = get_recipe(comp.name)
        info.update(job=dict(recipe.job), values=dict(recipe.values))
    needs = getattr(factory, "needs", None)
    if needs is not None:
        info["needs"] = {k: getattr(needs, k) for k in needs.__dataclass_fields__}
    return info
