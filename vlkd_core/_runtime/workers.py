"""How many DataLoader worker processes to start when the user does not say: one rule for
training (``--workers``), its episodes and the evaluators (``workers=``), decided when the
loader starts (so a saved config records ``None``, not the machine it was written on).

One worker per four cores, at most four; none for data of at most two batches, where starting
the processes costs more than they save. Why not one per core: on a CPU the forward (and
backward) pass already runs one intra-op thread per core, and a worker decoding images takes a
core from it. Measured on 2 cores (benchmarks/README.md): decoding and transforms are 1-2 % of a
training step, and the evaluators' zero-shot + retrieval run takes 2.7 s (median) with no worker
against 3.7 s with the two the evaluators used to start."""
from __future__ import annotations

import os


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(samples: int | None = None, batch_size: int = 1) -> int:
    """Workers for a loader over ``samples`` items (None: a stream of unknown length) in batches
    of ``batch_size`` (see the module docstring)."""
    if samples is not None and samples <= 2 * batch_size:
        return 0
    return min(4, cores() // 4)
