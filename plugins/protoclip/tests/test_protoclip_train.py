"""ProtoCLIP through the engine: a real tiny `vlkd train --loss protoclip --episode-size` that
trains, logs its clustering, writes the cluster-samples figure `vlkd report` shows and evaluates;
and the same job SIGKILLed in the middle of an episode and resumed, which must end with exactly
the uninterrupted run's weights and loss state (prototypes, assignments, projection heads)."""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from vlkd_cli.app import app
from vlkd_core import get_plugin_manager

sys.path.insert(0, str(Path(__file__).parent))
import protoclip_killer  # noqa: E402
from protoclip_job import LOSS_OPTIONS  # noqa: E402

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

STEPS = 12  # 3 episodes of 64 samples, batch 16: 4 steps each
FLAGS = ["--image", "toy:tiny", "--text", "toy:tiny", "--image-option", "image_size=32", "--image-head", "none",
         "--teacher", "none", "--loss", "protoclip", "--episode-size", "64", "--batch-size", "16",
         "--epochs", "3", "--warmup-steps", "2", "--log-every", "1", "--no-progress", "--save-every", "3",
         "--data-option", "size=32", "--data-option", "length=256",
         *[arg for key, value in LOSS_OPTIONS.items() for arg in ("--loss-option", f"protoclip.{key}={value}")]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("protoclip")
    result = CliRunner().invoke(app, ["train", *FLAGS, "--output-dir", str(out), "--name", "ref",
                                      "--eval", "retrieval:dataset=shapes,max_samples=64,progress=false"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out / "ref"


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_trains_logs_clusters_and_evaluates(reference):
    train = [r for r in _records(reference) if r["type"] == "train"]
    assert len(train) == STEPS
    infonce = [r["protoclip/infonce"] for r in train]
    assert sum(infonce[-3:]) < sum(infonce[:3])
    for r in train:  # every step: the prototype term, and its episode's clustering diagnostics
        assert r["protoclip/proto"] > 0 and r["protoclip/image_clusters_used"] >= 2
        assert -1 <= r["protoclip/text_silhouette"] <= 1 and r["protoclip/image_kmeans_error"] >= 0
    first, second = train[0], train[4]  # episodes 0 and 1 clustered different samples
    assert first["protoclip/image_kmeans_error"] != second["protoclip/image_kmeans_error"]
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["status"] == "finished" and 0 <= summary["metrics"]["retrieval/mean_recall"] <= 1
    figure = reference / "figures" / "protoclip-clusters.png"
    assert figure.read_bytes().startswith(b"\x89PNG")
    from vlkd_core.report import build_report
    page = build_report(reference, samples=24).read_text()
    assert "report/run-protoclip-clusters.png" in page and (reference / "report" / "run-protoclip-clusters.png").exists()


def _run_forked(argv: list[str], kill_at: int | None = None) -> int:
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            if kill_at is not None:
                get_plugin_manager().register_module(protoclip_killer, "protoclip-killer",
                                                     distribution="vlkd-protoclip-test")
                protoclip_killer.ARMED["step"] = kill_at
            result = CliRunner().invoke(app, argv)
            code = result.exit_code
            if result.exception and not isinstance(result.exception, SystemExit):
                traceback.print_exception(result.exception)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_kill_mid_episode_then_resume_is_bitwise_exact(reference, tmp_path):
    argv = ["train", *FLAGS, "--output-dir", str(tmp_path), "--name", "run", "--eval", "none"]
    # killed at the end of step 7: the last checkpoint is step 6, in the middle of episode 1
    assert _run_forked(argv, kill_at=7) == -9
    assert (tmp_path / "run" / "checkpoints" / "LATEST").read_text().strip() == "step-0000006"
    assert _run_forked([*argv, "--resume", "latest"]) == 0
    final = "step-{:07d}".format(STEPS)
    a = load_file(reference / "checkpoints" / final / "weights.safetensors")
    b = load_file(tmp_path / "run" / "checkpoints" / final / "weights.safetensors")
    assert a.keys() == b.keys() and "losses.protoclip.image_labels" in a
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, differ[:5]
    assert int(a["losses.protoclip.episode"]) == 2


@pytest.mark.slow
def test_the_bare_command_runs_on_the_built_in_data(tmp_path):
    """`vlkd train --loss protoclip` with the default towers and data: K comes from the episode
    (the paper's 20000 would not fit its samples) and the run says so."""
    result = CliRunner().invoke(app, ["train", "--loss", "protoclip", "--max-steps", "1", "--batch-size", "16",
                                      "--data-option", "length=64", "--eval", "none", "--no-progress",
                                      "--output-dir", str(tmp_path), "--name", "bare"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "loss 'protoclip': prototypes=6, one per 10 samples of the 64-sample episode" in result.output
