"""Small shared pieces for the training tests: tiny configs and log reading."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
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


@dataclass
class Completed:
    """What :func:`invoke_cli` returns: the fields of subprocess.CompletedProcess the tests read."""

    returncode: int
    stdout: str
    stderr: str


def invoke_cli(args: list[str], cwd: Path | None = None) -> Completed:
    """`vlkd ARGS` in this process, through the console script's own ``main`` (the exit code and
    one-line errors a terminal sees; stdout and stderr apart). For tests that need no fresh
    process (no signals, no torchrun, no environment-found plugins): it saves the ~5 s of
    importing torch and torchvision that a subprocess pays."""
    import contextlib
    import io
    import traceback
    import warnings

    from vlkd_cli.app import main
    out, err = io.StringIO(), io.StringIO()
    here, argv, columns = os.getcwd(), sys.argv, os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["vlkd", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("default")  # warnings print to stderr, as in a process of its own
            warnings.showwarning = lambda msg, cat, fn, ln, file=None, line=None: sys.stderr.write(
                warnings.formatwarning(msg, cat, fn, ln, line))
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # what an uncaught error does to a process
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(here)
        sys.argv = argv
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return Completed(code, out.getvalue(), err.getvalue())
