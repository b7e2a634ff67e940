"""How long `vlkd --help` and `vlkd plugins list` take to start, against a bare interpreter.

    python benchmarks/cli_startup.py [--repeat 5]

Target: `vlkd --help` and `vlkd train --help` (its flags generated from TrainConfig) under 0.5 s on a 2-core machine. Printed as seconds and as a ratio
to `python -c pass` measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
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
    base = None
    table = Table(title=f"CLI start-up (best / median of {args.repeat})")
    for col in ("command", "best s", "median s", "x baseline"):
        table.add_column(col)
    for name, cmd in cases.items():
        best, median = best_of(cmd, args.repeat)
        base = base or best
        table.add_row(name, f"{best:.3f}", f"{median:.3f}", f"{best / base:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
