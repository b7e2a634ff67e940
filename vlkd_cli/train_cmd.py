"""`vlkd train`: flags mirror TrainConfig keys (and --config files); flags override the file."""
import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import command_url_trust, console, handle_errors
from .launch import LAUNCH_OPTIONS, check_launch, launch, needs_launch
from .train_options import config_parameters, given_config

def results_table(summary: dict) -> Table:
    table = Table(title=f"results: {summary['run_dir']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(summary.get("metrics", {}).items()):
        table.add_row(key, f"{value:.4f}")
    table.add_row("[dim]final loss", f"{summary['final_loss']:.4f}")
    table.add_row("[dim]steps", str(summary["steps"]))
    table.add_row("[dim]train seconds", f"{summary['train_seconds']:.1f}")
    table.add_row("[dim]samples/s", f"{summary['samples_per_s']:.1f}")
    if summary.get("skipped_samples"):
        table.add_row("[yellow]skipped unreadable samples", str(summary["skipped_samples"]))
    return table


def optimizer_table(groups: list) -> Table:
    """The optimizer's parameter groups (shown with --layer-decay, where each depth has its lr)."""
    table = Table(title="optimizer groups")
    for column in ("group", "lr", "weight decay", "tensors"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in groups:
        table.add_row(g["name"], f"{g['lr']:.3g}", f"{g['weight_decay']:g}", str(g["tensors"]))
    return table


def resolve_config(config: Optional[Path], given: dict):
    """The run's TrainConfig: defaults < config file < flags; a resumed run starts from its
    saved config instead and may change only what a resumed run may change."""
    from vlkd_core.training.config import TrainConfig, load_config_file, resolve_new_run
    from vlkd_core.training.resume import config_for_resume
    file_values = load_config_file(config) if config else {}
    base = TrainConfig.from_dict(file_values, source=str(config)) if config else TrainConfig()
    file_given = {k.replace("-", "_"): getattr(base, k.replace("-", "_")) for k in file_values}
    if given.get("resume") or base.resume:
        cfg, recipe = config_for_resume({**file_given, **given}), None
    else:
        cfg, recipe = resolve_new_run({**file_given, **given}, source="flags")
    cfg.validate()  # every option, before a process is launched or anything is built
    return cfg, recipe


def _report(cfg, summary: dict) -> None:
    if summary.get("already_complete"):
        console.print(f"run {cfg.output_dir}/{cfg.name} is already complete (step {summary['steps']} of "
                      f"{summary['total_steps']}); nothing to do. To train further, resume with a larger "
                      "--epochs or --max-steps.", soft_wrap=True, highlight=False)
        return
    if cfg.layer_decay is not None and summary.get("optimizer"):
        console.print(optimizer_table(summary["optimizer"]))
    console.print(results_table(summary))


def train_command(ctx: typer.Context, config: Optional[Path] = None, nproc_per_node: int = 1,
                  nnodes: int = 1, node_rank: int = 0, rdzv_endpoint: Optional[str] = None,
                  master_port: Optional[int] = None, allow_pipe: bool = False, **values) -> None:
    """Train: compose towers, heads and losses from plugins (defaults: the MiniLM→image distillation job)."""
    check_launch(nproc_per_node, nnodes, node_rank, master_port)
    from vlkd_core._host.grammar import parse_eval_spec
    given = given_config(values)
    cfg, recipe = resolve_config(config, given)
    typed = [cfg.data_options if "data_options" in given else {},
             *(parse_eval_spec(spec)[1] for spec in given.get("eval") or [])]
    if needs_launch(nproc_per_node, nnodes):
        command_url_trust(allow_pipe, typed)  # refuse a typed pipe: before launching
        raise typer.Exit(launch("train", nproc_per_node, nnodes, node_rank, rdzv_endpoint, master_port, ctx))
    from vlkd_core.training import train  # after the launch: the launcher needs no torch (~3 s)
    if recipe is not None and recipe.line() and int(os.environ.get("RANK", "0")) == 0:
        console.print(f"[dim]{recipe.line()}[/]", soft_wrap=True, highlight=False)
    with command_url_trust(allow_pipe, typed):
        summary = train(cfg, console=console)
    if int(os.environ.get("RANK", "0")) == 0:
        _report(cfg, summary)


_OWN_OPTIONS = {
    "config": typer.Option(None, "--config", help="TOML/YAML/JSON file whose keys mirror these flags."),
    **LAUNCH_OPTIONS,
    "allow_pipe": typer.Option(False, "--allow-pipe", help="Let pipe:/remote shard URLs typed in "
                               "--data-option/--eval on this command line run their command "
                               "(never honoured from config files or saved runs)."),
}


def _command():
    """train_command with a signature Typer reads: its own options, then one per TrainConfig field."""
    import inspect
    own = inspect.signature(train_command).parameters
    params = [own["ctx"]]
    params += [own[name].replace(default=info, kind=inspect.Parameter.KEYWORD_ONLY)
               for name, info in _OWN_OPTIONS.items()]
    command = handle_errors(train_command)
    command.__signature__ = inspect.Signature(params[:2] + config_parameters() + params[2:])
    return command


def register(app: typer.Typer) -> None:
    app.command("train", context_settings={"allow_extra_args": False})(_command())
