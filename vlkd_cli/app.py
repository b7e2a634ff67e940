"""The `vlkd` Typer application. Sub-commands import their heavy modules lazily so that
`vlkd --help` stays fast."""
from typing import List, Optional

import typer

from . import components_cmd, data_cmd, eval_cmd, export_cmd, features_cmd, plugins_cmd, report_cmd, train_cmd

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
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
    disable_plugin: Optional[List[str]] = typer.Option(
        None, "--disable-plugin", help="Skip a plugin (repeatable; also VLKD_DISABLE_PLUGINS=a,b)."),
):
    """vlkd: compose backbones, heads, losses, datasets and evaluators from plugins."""
    from .common import user_messages
    ctx.with_resource(user_messages())
    if disable_plugin:
        from vlkd_core import reset_plugin_manager
        reset_plugin_manager(disable=disable_plugin)


for command_module in (train_cmd, eval_cmd, report_cmd, data_cmd, export_cmd, features_cmd):
    command_module.register(app)


def main() -> None:
    """The console script. Usage errors (a flag's value that is not a number, an unknown option)
    end in one line naming the flag, like every other vlkd error."""
    import sys

    import typer  # typer vendors click: match its exceptions by class name
    try:
        code = app(standalone_mode=False)
    except Exception as exc:  # noqa: BLE001 -- anything else is re-raised untouched
        names = [klass.__name__ for klass in type(exc).__mro__]
        ctx = getattr(exc, "ctx", None)
        if "NoArgsIsHelpError" in names and ctx is not None:
            typer.echo(ctx.get_help())
            code = 0
        elif "UsageError" in names and hasattr(exc, "format_message"):
            from .common import err_console
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err_console.print(f"[bold red]error:[/] {exc.format_message()}{hint}", soft_wrap=True,
                              highlight=False)
            code = getattr(exc, "exit_code", 2)
        elif "Abort" in names:
            typer.echo("Aborted!", err=True)
            code = 1
        else:
            raise
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The process entry point (console script, `python -m vlkd_cli`, each torchrun worker):
    :func:`main`, then the interpreter's exit without its last garbage collection. With torch and
    torchvision imported that collection walks ~10^6 objects, about 1.5 s per process here;
    frozen objects are skipped by it, while atexit handlers and explicit closes still run. Not
    in :func:`main`, which tests call in their own process: frozen objects are never freed."""
    import gc
    try:
        main()
    finally:
        gc.freeze()
