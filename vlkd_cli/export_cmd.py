"""`vlkd export RUN --format FORMAT --out DIR`."""
from pathlib import Path

import typer

from .common import console, handle_errors


# Formats are plugins' components: listing them here would load every plugin on `vlkd --help`.
FORMAT_HELP = ("Export format: safetensors and onnx fit every run, plugins add their families' "
               "(open_clip, sentence-transformers, hf, ...); `vlkd components list export_formats` "
               "lists them with the plugin of each.")


@handle_errors
def export_command(
    run: Path = typer.Argument(..., help="Run directory, checkpoint folder or safetensors export."),
    format: str = typer.Option(..., "--format", "-f", help=FORMAT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (absent or empty; never a run, "
                             "checkpoint or feature store, nor inside one)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a previous export at --out "
                                   "(never any other folder), in one atomic swap."),
):
    """Write a trained model in a format another library loads directly."""
    from vlkd_core.exports import export
    with console.status(f"exporting {run} as {format}"):
        path = export(run, format, out, overwrite=overwrite)
    console.print(f"[green]wrote[/] {path} ({format})")


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
