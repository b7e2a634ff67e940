"""A test-only hook module: SIGKILL this process at the end of a chosen optimizer step (after its
log hook, before its checkpoint), so the kill point is exact, not a timer's race."""
from __future__ import annotations

import os
import signal

from vlkd_core.hookspecs import hookimpl

ARMED = {"step": None}


@hookimpl
def vlkd_on_step_end(run, step, metrics):
    if step == ARMED["step"]:
        os.kill(os.getpid(), signal.SIGKILL)
