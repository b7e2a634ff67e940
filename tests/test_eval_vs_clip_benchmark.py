"""vlkd's zero-shot and retrieval evaluators give CLIP_benchmark's numbers (to 1e-4) on the same
tiny OpenCLIP model (a saved ``local-dir:`` folder) and the same written data: the comparison
of benchmarks/eval_vs_clip_benchmark.py at test size."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("clip_benchmark", reason="clip-benchmark is not installed (pip install clip-benchmark)")
pytest.importorskip("open_clip", reason="open_clip_torch is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import eval_vs_clip_benchmark as bench  # noqa: E402


pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

@pytest.fixture(scope="module")
def result(tmp_path_factory):
    work = tmp_path_factory.mktemp("eval-vs-clipb")
    # synthetic Fashion-MNIST files (so the test does not need the Debian package), a few
    # training steps so the scores are not all at chance
    args = bench.parse_args(["--size", "tiny", "--synthetic", "--fashion-samples", "200",
                             "--retrieval-images", "60", "--train-steps", "80", "--workers", "1",
                             "--repeats", "1"])
    setup, _ = bench.prepare(args, work)
    return bench.compare(setup, repeats=1), setup


def test_every_metric_agrees_to_1e_4(result):
    outcome, _ = result
    names = {row["metric"] for row in outcome["rows"]}
    assert names == {"zeroshot/top1", "zeroshot/top5", "zeroshot/mean_per_class_recall"} | {
        f"retrieval/{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)}
    for row in outcome["rows"]:
        assert row["diff"] <= 1e-4, row


def test_the_compared_scores_are_not_degenerate(result):
    """Agreement on all-zero or all-one scores would prove nothing."""
    outcome, _ = result
    values = {row["metric"]: row["vlkd"] for row in outcome["rows"]}
    assert 0.15 < values["zeroshot/top1"] < 1.0  # trained above 10-class chance (0.1)
    assert values["retrieval/image_to_text_R@1"] < values["retrieval/image_to_text_R@10"] <= 1.0
    assert 0.0 < values["retrieval/text_to_image_R@10"] < 1.0

