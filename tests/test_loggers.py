"""The two builtin loggers are separate plugins: TensorBoard can be switched off (it costs
~12 MB of heap) while metrics.jsonl, which `vlkd report` and resume read, stays."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from train_helpers import TINY

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

PROBE = """
import sys
from vlkd_cli.app import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print("TENSORBOARD_IMPORTED", "tensorboard" in sys.modules)
"""


def _train(tmp_path, name, *extra):
    cmd = [sys.executable, "-c", PROBE, *extra, "train", *TINY, "--epochs", "1", "--max-steps", "3",
           "--log-every", "1", "--output-dir", str(tmp_path), "--name", name]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return tmp_path / name, out.stdout


def test_tensorboard_plugin_can_be_disabled_and_metrics_file_stays(tmp_path):
    run, out = _train(tmp_path, "quiet", "--disable-plugin", "builtin-tensorboard")
    assert "TENSORBOARD_IMPORTED False" in out
    assert not (run / "tensorboard").exists()
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "train"]
    assert steps == [1, 2, 3]


def test_both_loggers_write_by_default(tmp_path):
    run, out = _train(tmp_path, "both")
    assert "TENSORBOARD_IMPORTED True" in out
    assert any((run / "tensorboard").iterdir())
    assert (run / "metrics.jsonl").read_text().count('"type": "train"') == 3
