"""Process-level set-up: torch.distributed from torchrun's environment, device, seeds, run dir."""
from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UsageError
from .config import TrainConfig


@dataclass
class Runtime:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # closed at teardown
    # host-side agreements between ranks (batch sizes, stop requests) travel on a CPU (gloo)
    # group: reading their result never waits for a GPU stream (None: the default group, gloo)
    control_group: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup_runtime() -> Runtime:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1): gloo on CPU,
    nccl on GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    control = torch.distributed.new_group(backend="gloo") if world > 1 and cuda else None
    return Runtime(rank, world, local, device, control_group=control)


def teardown_runtime(rt: Runtime, finished: bool = False) -> None:
    """Release the run's resources and leave the process group. After a finished run every rank
    meets at a barrier first: a rank whose peer has already torn down its gloo pairs can abort
    in gloo's worker thread ("terminate called without an active exception", SIGABRT) and turn
    a good run into a failed launch. After an error no barrier (the peer may be gone)."""
    rt.resources.close()  # run lock, signal handlers
    if rt.distributed and torch.distributed.is_initialized():
        if finished:
            torch.distributed.barrier(group=rt.control_group)
        torch.distributed.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_run_dir(cfg: TrainConfig, main: bool = True) -> Path:
    """``output_dir/name``; a new run never overwrites an existing run's checkpoints, and (on the
    main rank) a folder another training holds is refused at once, naming the holder."""
    name = cfg.name
    if not name:
        if cfg.resume == "latest":
            raise UsageError("--resume latest needs --name: which run under "
                             f"'{cfg.output_dir}' should continue?")
        loss = cfg.loss.split(",")[0].split(":")[0]
        name = time.strftime("%Y%m%d-%H%M%S-") + f"{cfg.image.replace(':', '-').replace('/', '-')}-{loss}"
        cfg.name = name
    run_dir = Path(cfg.output_dir) / name
    from .runlock import locked_error
    busy = locked_error(run_dir) if main else None
    if busy is not None:  # another training is writing there: say so, whatever else is wrong
        raise busy
    if main:
        check_run_dir(Path(cfg.output_dir), run_dir)
    if (run_dir / "checkpoints").exists() and not cfg.resume:
        raise UsageError(f"run directory '{run_dir}' already has checkpoints; pass --resume latest "
                         "to continue it or choose another --name")
    return run_dir


def check_run_dir(output_dir: Path, run_dir: Path) -> None:
    """A run is written only into a folder of runs and a run folder of its own (see
    :mod:`vlkd_core._runfiles.folders`), which holds no link a write could follow out of it."""
    from .._runfiles import folders
    from .._runfiles.runfiles import first_link
    folders.check_write_into(output_dir, "--output-dir")
    folders.claim(run_dir, "--name", folders.RUN, resume=True)
    link = first_link(run_dir) if run_dir.is_dir() else None
    if link is not None:
        raise UsageError(f"run folder '{run_dir}' holds '{link.relative_to(run_dir)}', a symbolic link or "
                         "special file; a run folder is data and holds plain files and folders only")
