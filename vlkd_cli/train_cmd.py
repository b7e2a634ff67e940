"""`vlkd train`: flags mirror TrainConfig keys (and --config files); flags override the file."""
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import command_url_trust, console, fail, handle_errors
from .train_options import config_parameters, given_config

LAUNCH_FLAGS = {"--nproc-per-node": 1, "--nnodes": 1, "--node-rank": 1, "--rdzv-endpoint": 1,
                "--rdzv-backend": 1, "--master-port": 1}


def _strip_launch_flags(argv: list[str]) -> list[str]:
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = 0 if "=" in arg else LAUNCH_FLAGS[name]
            continue
        out.append(arg)
    return out


def _launch(nproc: int, nnodes: int, node_rank: int, rdzv_endpoint: Optional[str],
            master_port: Optional[int], argv: list[str]) -> int:
    """Re-run this command under torch.distributed.run (torchrun)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes > 1:
        if not rdzv_endpoint:
            fail("--nnodes > 1 needs --rdzv-endpoint HOST:PORT")
        cmd += [f"--node-rank={node_rank}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    else:
        cmd += ["--standalone"] if master_port is None else [f"--master-port={master_port}"]
    cmd += ["-m", "vlkd_cli", "train", *_strip_launch_flags(argv)]
    console.print(f"[dim]launching: {' '.join(cmd)}[/]")
    return _run_forwarding_signals(cmd, env=dict(os.environ, VLKD_LAUNCHED="1"))


def _run_forwarding_signals(cmd: list[str], env: dict) -> int:
    """Run torchrun in its own session, so a terminal's Ctrl-C reaches only this launcher, which
    passes SIGINT/SIGTERM on to torchrun once; torchrun passes it to each worker, and the
    workers finish their step, checkpoint and stop while the launcher waits for them (before,
    the launcher died at once in a KeyboardInterrupt and left torchrun running). Exits
    128 + signal like a single-process run."""
    import signal
    child = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    received: list[int] = []

    def forward(signum, frame):
        if not received and child.poll() is None:
            child.send_signal(signum)
        received.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + received[0] if received and code != 0 else code


def _die_with_parent() -> None:
    """Linux: torchrun gets SIGTERM if the launcher dies (e.g. kill -9), as it would in the
    launcher's process group."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except OSError:
        pass


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


def _check_launch(nproc_per_node: int, nnodes: int, node_rank: int, master_port: Optional[int]) -> None:
    for flag, value, low in (("--nproc-per-node", nproc_per_node, 1), ("--nnodes", nnodes, 1),
                             ("--node-rank", node_rank, 0), ("--master-port", master_port, 1)):
        if value is not None and value < low:
            fail(f"{flag} must be >= {low}, not {value}")
    if node_rank >= nnodes:
        fail(f"--node-rank {node_rank} must be less than --nnodes {nnodes}")
    if master_port is not None and master_port > 65535:
        fail(f"--master-port must be <= 65535, not {master_port}")


def resolve_config(config: Optional[Path], given: dict):
    """The run's TrainConfig: defaults < config file < flags; a resumed run starts from its
    saved config instead and may change only what a resumed run may change."""
    from vlkd_core.training.config import TrainConfig, load_config_file
    from vlkd_core.training.resume import config_for_resume
    file_values = load_config_file(config) if config else {}
    base = TrainConfig.from_dict(file_values, source=str(config)) if config else TrainConfig()
    if given.get("resume") or base.resume:
        file_given = {k.replace("-", "_"): getattr(base, k.replace("-", "_")) for k in file_values}
        cfg = config_for_resume({**file_given, **given})
    else:
        cfg = TrainConfig.from_dict({**base.to_dict(), **given}, source="flags")
    cfg.validate()  # every option, before a process is launched or anything is built
    return cfg


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
    _check_launch(nproc_per_node, nnodes, node_rank, master_port)
    from vlkd_core.grammar import parse_eval_spec
    from vlkd_core.training import train
    given = given_config(values)
    cfg = resolve_config(config, given)
    typed = [cfg.data_options if "data_options" in given else {},
             *(parse_eval_spec(spec)[1] for spec in given.get("eval") or [])]
    if (nproc_per_node > 1 or nnodes > 1) and not os.environ.get("VLKD_LAUNCHED"):
        command_url_trust(allow_pipe, typed)  # refuse a typed pipe: before launching
        argv = sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else list(ctx.args)
        raise typer.Exit(_launch(nproc_per_node, nnodes, node_rank, rdzv_endpoint, master_port, argv))
    with command_url_trust(allow_pipe, typed):
        summary = train(cfg, console=console)
    if int(os.environ.get("RANK", "0")) == 0:
        _report(cfg, summary)


_OWN_OPTIONS = {
    "config": typer.Option(None, "--config", help="TOML/YAML/JSON file whose keys mirror these flags."),
    "nproc_per_node": typer.Option(1, help="Processes on this node: relaunches under torchrun."),
    "nnodes": typer.Option(1, help="Nodes of a multi-node run."),
    "node_rank": typer.Option(0, help="This node's rank in a multi-node run."),
    "rdzv_endpoint": typer.Option(None, help="HOST:PORT of the rendezvous (multi-node)."),
    "master_port": typer.Option(None, help="Port for single-node runs (default: any free)."),
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
