"""How long `vlkd --help` and `vlkd plugins list` take to start, against a bare interpreter; and
what a command that imports torch pays to end, with and without the interpreter's last garbage
collection (`vlkd_cli.app.run` freezes gc at exit; `main` alone does not).

    python benchmarks/cli_startup.py [--repeat 5]

Target: `vlkd --help` and `vlkd train --help` (its flags generated from TrainConfig) under 0.5 s on a 2-core machine. Printed as seconds and as a ratio
to `python -c pass` measured in the same run; the train rows also as a ratio to `main`.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table


def best_of(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    cases = {"python -c pass (baseline)": [py, "-c", "pass"],
             "vlkd --help": [py, "-m", "vlkd_cli", "--help"],
             "vlkd train --help": [py, "-m", "vlkd_cli", "train", "--help"],
             "vlkd plugins list": [py, "-m", "vlkd_cli", "plugins", "list"],
             "python -c 'import torch'": [py, "-c", "import torch"]}
    out = tempfile.mkdtemp(prefix="vlkd-startup-")
    train = ["train", "--image", "toy:tiny", "--text", "toy:tiny", "--image-option", "image_size=32",
             "--batch-size", "32", "--max-steps", "2", "--no-progress", "--eval", "none",
             "--data-option", "length=64"]
    probe = ("import sys, tempfile; sys.argv = {argv!r} + ['--output-dir', tempfile.mkdtemp(dir={out!r})]; "
             "from vlkd_cli.app import {f}; {f}()")  # a new run folder each time
    by_function = {f"2-step toy train, ends via {f}": [py, "-c", probe.format(argv=["vlkd", *train], out=out, f=f)]
                   for f in ("main", "run")}
    base = None
    table = Table(title=f"CLI start-up (best / median of {args.repeat})")
    for col in ("command", "best s", "median s", "x baseline", "x main"):
        table.add_column(col)
    for name, cmd in cases.items():
        best, median = best_of(cmd, args.repeat)
        base = base or best
        table.add_row(name, f"{best:.3f}", f"{median:.3f}", f"{best / base:.1f}", "")
    main_best = None
    for name, cmd in by_function.items():
        best, median = best_of(cmd, args.repeat)
        main_best = main_best or best
        table.add_row(name, f"{best:.3f}", f"{median:.3f}", f"{best / base:.1f}", f"{best / main_best:.2f}")
    shutil.rmtree(out, ignore_errors=True)
    Console().print(table)


if __name__ == "__main__":
    main()
