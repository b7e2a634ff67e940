"""Graceful stop on SIGINT / SIGTERM: the first signal lets the current optimizer step finish,
then the loop writes a checkpoint and stops with exit code 128 + signal (130 / 143) and a line
saying how to resume. A second signal stops at once, without a checkpoint; a repeat within
half a second counts as the same request (torchrun forwards the terminal's Ctrl-C to workers that
already received it)."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import VlkdError

SIGNALS = (signal.SIGINT, signal.SIGTERM)
SAME_REQUEST_SECONDS = 0.5


class TrainingInterrupted(VlkdError):
    """Training stopped on a signal after writing a checkpoint."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopOnSignal:
    """Installs the handlers while entered (main thread only); ``requested()`` polls them."""

    def __init__(self) -> None:
        self.signum = 0
        self._first_at = 0.0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.signum and time.monotonic() - self._first_at < SAME_REQUEST_SECONDS:
            return  # the same Ctrl-C, forwarded by a launcher
        if self.signum:  # the second one: stop now
            os.write(2, f"\n{name} again: stopping now, without a checkpoint\n".encode())
            os._exit(128 + signum)
        self.signum, self._first_at = signum, time.monotonic()
        os.write(2, f"\n{name}: finishing this step, then writing a checkpoint "
                    "(Ctrl-C again stops at once)\n".encode())

    def requested(self, distributed: bool = False, group: Any = None) -> bool:
        """True once a signal arrived (on any rank: all ranks stop at the same step). Under DDP
        the flag travels on ``group``, a CPU (gloo) group, so reading it never waits for a GPU."""
        if not distributed:
            return bool(self.signum)
        flag = torch.tensor([self.signum], dtype=torch.long)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, group=group)
        self.signum = int(flag.item())
        return bool(self.signum)

    def interrupted(self, step: int, checkpoint: Path | None, run_dir: Path, output_dir: str,
                    main: bool = True) -> TrainingInterrupted:
        name = signal.Signals(self.signum).name
        if not main:  # rank 0 writes the checkpoint and says how to resume
            return TrainingInterrupted(f"stopped by {name} after step {step}", self.signum)
        where = f" --output-dir {output_dir}" if Path(output_dir) != Path("runs") else ""
        return TrainingInterrupted(
            f"stopped by {name} after step {step}; checkpoint {checkpoint}. Resume with: "
            f"vlkd train --resume latest --name {run_dir.name}{where}", self.signum)
