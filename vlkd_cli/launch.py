"""Relaunching a command under torchrun (`--nproc-per-node`, `--nnodes`, rendezvous flags), for
`vlkd train` and every other command that runs on several processes."""
import os
import subprocess
import sys
from typing import Optional

import typer

from .common import console, fail

LAUNCH_OPTIONS = {
    "nproc_per_node": typer.Option(1, help="Processes on this node: relaunches under torchrun."),
    "nnodes": typer.Option(1, help="Nodes of a multi-node run."),
    "node_rank": typer.Option(0, help="This node's rank in a multi-node run."),
    "rdzv_endpoint": typer.Option(None, help="HOST:PORT of the rendezvous (multi-node)."),
    "master_port": typer.Option(None, help="Port for single-node runs (default: any free)."),
}

LAUNCH_FLAGS = {"--nproc-per-node": 1, "--nnodes": 1, "--node-rank": 1, "--rdzv-endpoint": 1,
                "--rdzv-backend": 1, "--master-port": 1}


def strip_launch_flags(argv: list[str]) -> list[str]:
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


def _torchrun_command(command: str, nproc: int, nnodes: int, node_rank: int, rdzv_endpoint: Optional[str],
                     master_port: Optional[int], argv: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "vlkd_cli.torchrun", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes > 1:
        if not rdzv_endpoint:
            fail("--nnodes > 1 needs --rdzv-endpoint HOST:PORT")
        cmd += [f"--node-rank={node_rank}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    else:
        cmd += ["--standalone"] if master_port is None else [f"--master-port={master_port}"]
    return cmd + ["-m", "vlkd_cli", *command.split(), *strip_launch_flags(argv)]


def run_forwarding_signals(cmd: list[str], env: dict) -> int:
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


def check_launch(nproc_per_node: int, nnodes: int, node_rank: int, master_port: Optional[int]) -> None:
    for flag, value, low in (("--nproc-per-node", nproc_per_node, 1), ("--nnodes", nnodes, 1),
                             ("--node-rank", node_rank, 0), ("--master-port", master_port, 1)):
        if value is not None and value < low:
            fail(f"{flag} must be >= {low}, not {value}")
    if node_rank >= nnodes:
        fail(f"--node-rank {node_rank} must be less than --nnodes {nnodes}")
    if master_port is not None and master_port > 65535:
        fail(f"--master-port must be <= 65535, not {master_port}")


def needs_launch(nproc_per_node: int, nnodes: int) -> bool:
    """True in the first process of a multi-process command (not yet under torchrun)."""
    return (nproc_per_node > 1 or nnodes > 1) and not os.environ.get("VLKD_LAUNCHED")


def launch(command: str, nproc: int, nnodes: int, node_rank: int, rdzv_endpoint: Optional[str],
           master_port: Optional[int], ctx: typer.Context) -> int:
    """Re-run ``vlkd COMMAND ...`` (this command line, launch flags removed) under
    torch.distributed.run; returns its exit code."""
    first = command.split()[-1]
    argv = sys.argv[sys.argv.index(first) + 1:] if first in sys.argv else list(ctx.args)
    cmd = _torchrun_command(command, nproc, nnodes, node_rank, rdzv_endpoint, master_port, argv)
    console.print(f"[dim]launching: {' '.join(cmd)}[/]")
    return run_forwarding_signals(cmd, env=dict(os.environ, VLKD_LAUNCHED="1"))
