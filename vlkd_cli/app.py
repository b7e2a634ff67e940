"""The `vlkd` Typer application. Sub-commands import their heavy modules lazily so that
`vlkd --help` stays fast."""
from typing import List, Optional

import typer

from . import components_cmd, data_cmd, eval_cmd, plugins_cmd, report_cmd, train_cmd

app = typer.Typer(name="vlkd", help="Vision-language representation learning and knowledge "
                  "distillation, composed from plugins.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
app.add_typer(plugins_cmd.app, name="plugins")
app.add_typer(components_cmd.app, name="components")


def _version(value: bool):
    if value:
        from importlib.metadata import PackageNotFoundError, version
        try:
            typer.echo(f"vlkd {version('vlkd')}")
        except PackageNotFoundError:
            typer.echo("vlkd (not installed)")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
    disable_plugin: Optional[List[str]] = typer.Option(
        None, "--disable-plugin", help="Skip a plugin (repeatable; also VLKD_DISABLE_PLUGINS=a,b)."),
):
    """vlkd: compose backbones, heads, losses, datasets and evaluators from plugins."""
    if disable_plugin:
        from vlkd_core import reset_plugin_manager
        reset_plugin_manager(disable=disable_plugin)


for command_module in (train_cmd, eval_cmd, report_cmd, data_cmd):
    command_module.register(app)


def main() -> None:
    app()
