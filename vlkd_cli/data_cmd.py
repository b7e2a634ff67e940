"""`vlkd data ...`: prepare training data (CSV -> webdataset shards)."""
from pathlib import Path
from typing import Optional

import typer

from .common import console, err_console, handle_errors

app = typer.Typer(help="Prepare training data: convert a CSV/TSV of image paths and captions "
                  "into webdataset shards.", no_args_is_help=True)
SHOW_SKIPPED = 20  # rows listed individually; the rest are counted


@app.command("to-webdataset")
@handle_errors
def to_webdataset(
    csv_path: str = typer.Argument(..., metavar="CSV", help="CSV/TSV file (several: comma-separated)."),
    out_dir: Path = typer.Argument(..., help="Directory for the .tar shards (created if missing)."),
    maxcount: int = typer.Option(10_000, "--maxcount", help="Samples per shard."),
    image_key: str = typer.Option("filepath", "--image-key", help="Column holding image paths."),
    caption_key: str = typer.Option("title", "--caption-key", help="Column holding captions."),
    image_root: Optional[str] = typer.Option(None, "--image-root",
                                             help="Base folder of relative image paths (default: the CSV's folder)."),
    separator: Optional[str] = typer.Option(None, "--separator",
                                            help="Field separator (default: tab for .tsv, comma otherwise; 'tab' accepted)."),
    label_key: Optional[str] = typer.Option(None, "--label-key", help="Optional integer class-label column (stored as .cls)."),
    prefix: str = typer.Option("shard", "--prefix", help="Shard file name prefix: PREFIX-000000.tar, ..."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first missing/unreadable image instead of skipping it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace PREFIX-*.tar shards already in OUT_DIR."),
):
    """Convert CSV rows (image path + caption) into webdataset shards, skipping unreadable images."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from vlkd_core.datasets.convert import csv_to_webdataset

    columns = (TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("rows", total=None)
        report = csv_to_webdataset(
            csv_path, out_dir, maxcount=maxcount, image_key=image_key, caption_key=caption_key,
            image_root=image_root, separator=separator, label_key=label_key, prefix=prefix,
            strict=strict, overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    # one plain line per skipped row (not a table): long paths stay whole and grep-able
    for where, reason in report.skipped[:SHOW_SKIPPED]:
        err_console.print(f"[yellow]skipped[/] {where}: {reason}", soft_wrap=True, highlight=False)
    if len(report.skipped) > SHOW_SKIPPED:
        err_console.print(f"[yellow]skipped[/] {len(report.skipped) - SHOW_SKIPPED} more row(s)",
                          highlight=False)
    console.print(f"wrote {report.written} of {report.total} samples in {len(report.shards)} "
                  f"shard(s); skipped {len(report.skipped)}", highlight=False)
    console.print(f"read them with: --data webdataset --data-option 'path={report.pattern}'",
                  highlight=False, soft_wrap=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
