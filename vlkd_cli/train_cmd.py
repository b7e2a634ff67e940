"""`vlkd train`: flags mirror TrainConfig keys (and --config files); flags override the file."""
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .common import command_url_trust, console, fail, handle_errors, parse_options

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


def _loss_options(pairs: Optional[List[str]]) -> dict:
    nested: dict = {}
    for key, value in parse_options(pairs, "--loss-option").items():
        name, dot, option = key.partition(".")
        if not dot:
            fail(f"--loss-option '{key}' must look like LOSS.option=value (e.g. seed.queue_size=4096)")
        nested.setdefault(name.replace("_", "-") if name not in ("") else name, {})[option] = value
    return nested


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


@handle_errors
def train_command(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", help="TOML/YAML/JSON file whose keys mirror these flags."),
    image: Optional[str] = typer.Option(None, help="Image tower, family:model (default torchvision:resnet18)."),
    text: Optional[str] = typer.Option(None, help="Text tower, family:model (default hf:sentence-transformers/all-MiniLM-L6-v2)."),
    image_pretrained: Optional[str] = typer.Option(None, help="Image weights: a family tag or a local path."),
    text_pretrained: Optional[str] = typer.Option(None, help="Text weights: a family tag or a local path."),
    image_option: Optional[List[str]] = typer.Option(None, help="key=value for the image tower (repeatable)."),
    text_option: Optional[List[str]] = typer.Option(None, help="key=value for the text tower (repeatable)."),
    cache_dir: Optional[str] = typer.Option(None, help="Where towers cache downloaded weights."),
    image_head: Optional[str] = typer.Option(None, help="Head on the image tower (linear, mlp, ...; 'none' for none)."),
    text_head: Optional[str] = typer.Option(None, help="Head on the text tower ('none' for none)."),
    head_option: Optional[List[str]] = typer.Option(None, help="key=value for the heads (repeatable)."),
    embed_dim: Optional[int] = typer.Option(None, help="Head output width (default: the teacher's)."),
    prototypes: Optional[int] = typer.Option(None, help="Prototype count for DINO/ProtoCPC-style losses."),
    teacher: Optional[str] = typer.Option(None, help="Which tower is the locked teacher: text|image|none."),
    lock_image: Optional[bool] = typer.Option(None, "--lock-image/--no-lock-image", help="Freeze the image tower."),
    lock_text: Optional[bool] = typer.Option(None, "--lock-text/--no-lock-text", help="Freeze the text tower."),
    unlock: Optional[List[str]] = typer.Option(None, "--unlock", "--unlock-pattern", help="TOWER:patterns kept trainable in a locked tower, e.g. 'image:layer4*,!*bn*'."),
    loss: Optional[str] = typer.Option(None, help="name[:weight],... (default infonce)."),
    loss_option: Optional[List[str]] = typer.Option(None, help="LOSS.option=value (repeatable), e.g. seed.queue_size=4096."),
    data: Optional[str] = typer.Option(None, help="Training dataset name (default shapes)."),
    data_option: Optional[List[str]] = typer.Option(None, help="key=value for the dataset (repeatable)."),
    episode_size: Optional[int] = typer.Option(None, help="A fresh random subset of this many samples per epoch."),
    augment: Optional[str] = typer.Option(None, help="Training augmentation: openclip (crop 90-100%, no flip; default) | imagenet | none."),
    strict: Optional[bool] = typer.Option(None, "--strict/--no-strict", help="Stop at the first unreadable image."),
    workers: Optional[int] = typer.Option(None, help="DataLoader worker processes."),
    epochs: Optional[int] = typer.Option(None),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Per-process batch size."),
    accum_steps: Optional[int] = typer.Option(None, help="Gradient accumulation steps."),
    lr: Optional[float] = typer.Option(None),
    image_lr: Optional[float] = typer.Option(None),
    text_lr: Optional[float] = typer.Option(None),
    weight_decay: Optional[float] = typer.Option(None),
    layer_decay: Optional[float] = typer.Option(None, help="Layer-wise lr decay: a tower layer at depth d of L trains at lr x decay^(L-d) (0 < decay <= 1)."),
    warmup_steps: Optional[int] = typer.Option(None),
    grad_clip: Optional[float] = typer.Option(None, help="Max gradient norm (0 disables)."),
    precision: Optional[str] = typer.Option(None, help="fp32|bf16|fp16"),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the towers."),
    seed: Optional[int] = typer.Option(None),
    feature_cache: Optional[str] = typer.Option(None, help="Frozen-tower feature cache: memory|disk|none."),
    feature_cache_dir: Optional[str] = typer.Option(None),
    eval: Optional[List[str]] = typer.Option(None, "--eval", help="NAME[:key=value,...] (repeatable; 'none' for none)."),
    eval_every: Optional[int] = typer.Option(None, help="Evaluate every N epochs (and always at the end)."),
    eval_wise_ft: Optional[float] = typer.Option(None, help="Also evaluate WiSE-FT weights (1-A)*start + A*current (metrics 'wise-ft/...')."),
    output_dir: Optional[str] = typer.Option(None),
    name: Optional[str] = typer.Option(None, help="Run name: the run directory is OUTPUT_DIR/NAME."),
    save_every: Optional[int] = typer.Option(None, help="Checkpoint every N steps (and at the end)."),
    keep_checkpoints: Optional[int] = typer.Option(None),
    resume: Optional[str] = typer.Option(None, help="'latest' (of --name) or a run/checkpoint path."),
    log_every: Optional[int] = typer.Option(None),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress"),
    nproc_per_node: int = typer.Option(1, help="Processes on this node: relaunches under torchrun."),
    nnodes: int = typer.Option(1),
    node_rank: int = typer.Option(0),
    rdzv_endpoint: Optional[str] = typer.Option(None, help="HOST:PORT of the rendezvous (multi-node)."),
    master_port: Optional[int] = typer.Option(None, help="Port for single-node runs (default: any free)."),
    allow_pipe: bool = typer.Option(False, "--allow-pipe", help="Let pipe:/remote shard URLs typed in "
                                    "--data-option/--eval on this command line run their command "
                                    "(never honoured from config files or saved runs)."),
):
    """Train: compose towers, heads and losses from plugins (defaults: the MiniLM→image distillation job)."""
    for flag, value, low in (("--nproc-per-node", nproc_per_node, 1), ("--nnodes", nnodes, 1),
                             ("--node-rank", node_rank, 0), ("--master-port", master_port, 1)):
        if value is not None and value < low:
            fail(f"{flag} must be >= {low}, not {value}")
    if node_rank >= nnodes:
        fail(f"--node-rank {node_rank} must be less than --nnodes {nnodes}")
    if master_port is not None and master_port > 65535:
        fail(f"--master-port must be <= 65535, not {master_port}")
    from vlkd_core.training import TrainConfig, load_config_file, train
    from vlkd_core.training.evals import parse_eval_spec
    from vlkd_core.training.resume import config_for_resume
    file_values = load_config_file(config) if config else {}
    base = TrainConfig.from_dict(file_values, source=str(config)) if config else TrainConfig()
    none_or = lambda v: None if v is None else (None if str(v).lower() == "none" else v)
    overrides = dict(
        image=image, text=text, image_pretrained=image_pretrained, text_pretrained=text_pretrained,
        image_options=parse_options(image_option, "--image-option") if image_option else None,
        text_options=parse_options(text_option, "--text-option") if text_option else None,
        cache_dir=cache_dir, embed_dim=embed_dim, prototypes=prototypes, teacher=teacher,
        head_options=parse_options(head_option, "--head-option") if head_option else None,
        lock_image=lock_image, lock_text=lock_text, unlock=unlock or None, loss=loss,
        loss_options=_loss_options(loss_option) if loss_option else None, data=data,
        data_options=parse_options(data_option, "--data-option") if data_option else None,
        episode_size=episode_size, augment=augment, strict=strict, workers=workers, epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, accum_steps=accum_steps, lr=lr, image_lr=image_lr, text_lr=text_lr,
        weight_decay=weight_decay, layer_decay=layer_decay, warmup_steps=warmup_steps, grad_clip=grad_clip, precision=precision,
        compile=compile, seed=seed, feature_cache=feature_cache, feature_cache_dir=feature_cache_dir,
        eval_every=eval_every, eval_wise_ft=eval_wise_ft, output_dir=output_dir, name=name, save_every=save_every,
        keep_checkpoints=keep_checkpoints, resume=resume, log_every=log_every, progress=progress)
    given = {k: v for k, v in overrides.items() if v is not None}
    if image_head is not None:
        given["image_head"] = none_or(image_head)
    if text_head is not None:
        given["text_head"] = none_or(text_head)
    if eval:  # "none" clears the list (and what came before it)
        specs = list(eval)
        given["eval"] = specs[len(specs) - specs[::-1].index("none"):] if "none" in specs else specs
    if given.get("resume") or base.resume:
        # the run's saved config, changed only where a resumed run may change (a UsageError else)
        file_given = {k.replace("-", "_"): getattr(base, k.replace("-", "_")) for k in file_values}
        cfg = config_for_resume({**file_given, **given})
    else:
        cfg = TrainConfig.from_dict({**base.to_dict(), **given}, source="flags")
    cfg.validate()  # every option, before a process is launched or anything is built
    typed = [cfg.data_options if "data_options" in given else {},
             *(parse_eval_spec(spec)[1] for spec in given.get("eval") or [])]
    if (nproc_per_node > 1 or nnodes > 1) and not os.environ.get("VLKD_LAUNCHED"):
        command_url_trust(allow_pipe, typed)  # refuse a typed pipe: before launching
        argv = sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else list(ctx.args)
        raise typer.Exit(_launch(nproc_per_node, nnodes, node_rank, rdzv_endpoint, master_port, argv))
    with command_url_trust(allow_pipe, typed):
        summary = train(cfg, console=console)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if summary.get("already_complete"):
        console.print(f"run {cfg.output_dir}/{cfg.name} is already complete (step {summary['steps']} of "
                      f"{summary['total_steps']}); nothing to do. To train further, resume with a larger "
                      "--epochs or --max-steps.", soft_wrap=True, highlight=False)
        return
    if cfg.layer_decay is not None and summary.get("optimizer"):
        console.print(optimizer_table(summary["optimizer"]))
    console.print(results_table(summary))


def register(app: typer.Typer) -> None:
    app.command("train", context_settings={"allow_extra_args": False})(train_command)
