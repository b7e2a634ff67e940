"""`vlkd eval RUN_OR_CHECKPOINT` or `vlkd eval --image SPEC [--text SPEC]`."""
import contextlib
import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from vlkd_core.training.config import TowerConfig, options

from .common import command_url_trust, console, fail, handle_errors
from .tower_options import given_towers, tower_flags


def metrics_table(metrics: dict, title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(metrics.items()):
        table.add_row(key, f"{value:.4f}")
    return table


# untrained towers: no head, learning rate or lock
TOWER_PARTS = ("spec", "pretrained", "options")


@tower_flags(TOWER_PARTS, after="eval", notes={
    ("image", "spec"): "Evaluated untrained, instead of a run.",
    ("text", "spec"): "For --image; image-only evaluators (linear-probe, knn, clustering) need none."})
@handle_errors
def eval_command(
    target: Optional[Path] = typer.Argument(None, help="Run directory or checkpoint folder."),
    eval: Optional[List[str]] = typer.Option(None, "--eval", help="NAME[:key=value,...] (repeatable); default: the run's own --eval list."),
    output: Optional[Path] = typer.Option(None, help="Where to write eval.json (default: the run directory)."),
    wise_ft: Optional[float] = typer.Option(None, "--wise-ft", help="Evaluate the WiSE-FT weights (1-A)*start + A*trained of a run (0 <= A <= 1); writes eval-wise-ft-A.json."),
    allow_pipe: bool = typer.Option(False, "--allow-pipe", help="Let pipe:/remote shard URLs typed in "
                                    "--eval on this command line run their command (never honoured "
                                    "from the run's saved config)."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help=options()["cache_dir"].help +
                                            " For a run: instead of the one it was trained with."),
    **towers,
):
    """Evaluate a run, a checkpoint, or pretrained towers; prints a table and writes eval.json."""
    from vlkd_core.training.evals import build_evaluators, parse_eval_spec, run_evaluators
    trust = command_url_trust(allow_pipe, [parse_eval_spec(spec)[1] for spec in eval or []])
    weights = contextlib.nullcontext()  # or the WiSE-FT interpolation of a run's weights
    named = given_towers(towers, TOWER_PARTS)
    if target is not None and named:
        fail("give either a RUN_OR_CHECKPOINT or --image/--text, not both")
    if wise_ft is not None:
        from vlkd_core.training.wiseft import check_alpha
        check_alpha(wise_ft, "--wise-ft")
        if target is None:
            fail("--wise-ft needs a RUN_OR_CHECKPOINT (it interpolates from the run's starting weights)")
    restored = None  # the run evaluated, if any: the plugins' eval hooks see its config and folder
    if target is not None:
        restored, specs, out, title, weights = _of_run(target, eval, output, wise_ft, cache_dir)
        model = restored.model
    elif "image" in named:
        model = _pretrained_towers(named["image"], named.get("text"), cache_dir)
        specs, out = list(eval or []), output or Path("eval.json")
        title = "eval: " + " + ".join(tower.spec for tower in named.values())
    else:
        fail("give a RUN_OR_CHECKPOINT, or --image (with --text for evaluators that read text)")
    if not specs:
        fail("no evaluators: pass --eval NAME[:options]")
    model.eval()
    with trust, weights:
        metrics = run_evaluators(build_evaluators(specs), model)
    record = {"evaluators": specs, "metrics": metrics}
    if wise_ft is not None:
        record["wise_ft"] = wise_ft
    _write(out, record)
    from vlkd_core.training.evals import eval_ended
    eval_ended(model, metrics, restored.run_dir if restored else out.parent,
               restored.config if restored else None, restored.checkpoint if restored else None)
    console.print(metrics_table(metrics, title))
    console.print(f"[dim]wrote {out}[/]")


def _write(out: Path, record: dict) -> None:
    """eval.json as a fresh file renamed into place: a link planted in a received run folder is
    replaced, never written through; a full disk is one line."""
    from vlkd_core._runfiles.runfiles import write_atomic
    from vlkd_core._runfiles.storage import write_errors
    with write_errors(f"'{out}'", out.parent):
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, json.dumps(record, indent=2), durable=False)


def _of_run(target: Path, eval: Optional[List[str]], output: Optional[Path], wise_ft: Optional[float],
            cache_dir: Optional[str]):
    """(the restored run, its eval specs, where eval.json goes, the table's title, the weights
    context: WiSE-FT's interpolation or none)."""
    from vlkd_core.training.restore import load_run
    restored = load_run(target, cache_dir=cache_dir)
    specs = list(eval or restored.config.eval_specs())
    out = output or restored.run_dir / ("eval.json" if wise_ft is None else f"eval-wise-ft-{wise_ft:g}.json")
    title = f"eval: {restored.checkpoint}" + ("" if wise_ft is None else f" (WiSE-FT, alpha {wise_ft:g})")
    weights = contextlib.nullcontext()
    if wise_ft is not None:
        from vlkd_core.training.wiseft import interpolated, load_start_weights
        weights = interpolated(restored.model, load_start_weights(restored.run_dir), wise_ft)
    return restored, specs, out, title, weights


def _pretrained_towers(image: TowerConfig, text: Optional[TowerConfig], cache_dir: Optional[str]):
    """Untrained towers as one model; without --text, a stand-in tower that only an evaluator
    reading text refuses (naming --text)."""
    import vlkd_core
    from vlkd_core._model.missing_tower import MissingTower
    from vlkd_core._model.model import DualEncoder
    from vlkd_core.api import with_cache_dir
    towers = {side: vlkd_core.build_backbone(t.spec, side, t.pretrained, **with_cache_dir(t.spec, t.options, cache_dir))
              for side, t in (("image", image), ("text", text)) if t is not None}
    if text is None:
        return DualEncoder(towers["image"], MissingTower("text", "--text"))
    model = DualEncoder(towers["image"], towers["text"])
    if model.image_tower.output_dim != model.text_tower.output_dim:
        fail(f"--image {image.spec} gives {model.image_tower.output_dim}-d features and --text {text.spec} "
             f"{model.text_tower.output_dim}-d: evaluate a trained run (with heads) instead")
    return model


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
