"""`vlkd eval --image SPEC --eval linear-probe:...` needs no --text; an evaluator that reads text
stops with one line naming --text."""
import json

import pytest

from train_helpers import invoke_cli

PROBE = ("linear-probe:dataset=shapes,dataset.size=32,dataset.two_shapes=0,dataset.length=120,"
         "max_samples=60,max_train_samples=120")
IMAGE = ["--image", "toy:tiny", "--image-option", "image_size=32"]


@pytest.mark.slow
def test_image_only_evaluators_run_without_a_text_tower(tmp_path):
    out = tmp_path / "eval.json"
    result = invoke_cli(["eval", *IMAGE, "--eval", PROBE, "--eval", "knn:dataset=shapes,dataset.size=32,"
                      "dataset.length=120,max_samples=60", "--output", str(out)])
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())["metrics"]
    assert 0.0 <= metrics["linear_probe/top1"] <= 1.0 and "knn/top1" in metrics


def test_an_evaluator_reading_text_names_the_missing_flag(tmp_path):
    result = invoke_cli(["eval", *IMAGE, "--eval", "zeroshot:dataset=shapes,dataset.size=32,dataset.length=20",
                      "--output", str(tmp_path / "eval.json")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: this evaluator needs a text tower: pass --text SPEC (image-only evaluators such as "
        "linear-probe and knn do not)"]
    assert not (tmp_path / "eval.json").exists()
    result = invoke_cli(["eval", "--text", "toy:tiny", "--eval", PROBE])
    assert result.returncode == 2 and "--image" in result.stderr
