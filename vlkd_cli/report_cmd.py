"""`vlkd report RUN_DIR`."""
from pathlib import Path

import typer

from .common import console, handle_errors


@handle_errors
def report_command(run_dir: Path = typer.Argument(..., help="A run directory (runs/NAME)."),
                   samples: int = typer.Option(300, help="Held-out samples for the retrieval grid and embedding map.")):
    """Write RUN_DIR/report.html with loss/lr curves, metrics, per-class accuracy, retrieval examples and an embedding map."""
    from vlkd_core.report import build_report
    with console.status("building report"):
        path = build_report(run_dir, samples=samples)
    console.print(f"[green]wrote[/] {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
