"""Small shared pieces for the training tests: tiny configs and log reading."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# toy towers at 32 px: a few steps take a second or two on 2 cores
TOWERS = ["--image", "toy:tiny", "--text", "toy:tiny", "--image-option", "image_size=32",
          "--image-head", "none", "--batch-size", "32", "--epochs", "2", "--log-every", "1",
          "--no-progress", "--eval", "none", "--warmup-steps", "2"]
SHAPES = ["--data-option", "size=32", "--data-option", "length=256"]
TINY = TOWERS + SHAPES


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["type"] == "train"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def decreased(values: list[float], window: int = 3) -> bool:
    return sum(values[-window:]) / window < sum(values[:window]) / window


def run_cli(args: list[str], cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    """Run `python -m vlkd_cli ...` in a subprocess (exact exit codes, real signals)."""
    full_env = dict(os.environ, COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "vlkd_cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)
