"""`vlkd eval` on a finished run and on towers from specs; `vlkd report` writes real plots."""
from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from vlkd_cli.app import app
from train_helpers import TOWERS

runner = CliRunner()
PROBE = "linear-probe:dataset=shapes,dataset.size=32,dataset.two_shapes=0,dataset.length=300,max_samples=300,max_train_samples=400"
ZEROSHOT = "zeroshot:dataset=shapes,dataset.size=32,dataset.two_shapes=0,dataset.label_by=colour,max_samples=200"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["train", *TOWERS, "--data-option", "size=32", "--data-option", "length=1024",
                                 "--loss", "infonce", "--teacher", "none", "--epochs", "8", "--lr", "3e-3",
                                 "--eval", "retrieval:dataset=shapes,dataset.size=32,max_samples=100",
                                 "--eval-every", "2", "--output-dir", str(root), "--name", "run"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root / "run"


@pytest.mark.slow
def test_eval_rebuilds_the_run_and_writes_eval_json(trained_run):
    result = runner.invoke(app, ["eval", str(trained_run), "--eval", ZEROSHOT, "--eval", PROBE])
    assert result.exit_code == 0, result.output + repr(result.exception)
    saved = json.loads((trained_run / "eval.json").read_text())
    metrics = saved["metrics"]
    assert {"zeroshot/top1", "zeroshot/top5", "linear_probe/top1", "linear_probe/best_C"} <= set(metrics)
    assert "zeroshot/top1" in result.stdout
    # what the trained image tower learned is linearly decodable far better than at random init
    random_init = runner.invoke(app, ["eval", "--image", "toy:tiny", "--text", "toy:tiny",
                                      "--image-option", "image_size=32", "--eval", PROBE,
                                      "--output", str(trained_run.parent / "random.json")])
    assert random_init.exit_code == 0, random_init.output
    random_metrics = json.loads((trained_run.parent / "random.json").read_text())["metrics"]
    assert metrics["linear_probe/top1"] > random_metrics["linear_probe/top1"] + 0.05
    assert metrics["zeroshot/top1"] > 0.6  # 6 colours: chance is 1/6


@pytest.mark.slow
def test_eval_the_run_default_evaluators_and_a_checkpoint_folder(trained_run):
    checkpoint = trained_run / "checkpoints" / (trained_run / "checkpoints" / "LATEST").read_text()
    result = runner.invoke(app, ["eval", str(checkpoint)])
    assert result.exit_code == 0, result.output
    assert "retrieval/text_to_image_R@1" in json.loads((trained_run / "eval.json").read_text())["metrics"]


def test_eval_errors_are_one_line_with_exit_2(tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["eval", "--image", "toy:tiny", "--text", "toy:tiny", "--eval", "zeroshot:datset=shapes"])
    assert result.exit_code == 2 and "no option 'datset'" in result.output


@pytest.mark.slow
def test_report_writes_html_and_non_trivial_pngs(trained_run):
    result = runner.invoke(app, ["report", str(trained_run), "--samples", "120"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    html = (trained_run / "report.html").read_text()
    pngs = {p.name: p for p in (trained_run / "report").glob("*.png")}
    assert set(pngs) == {"curves.png", "metrics.png", "retrieval.png", "per_class.png", "embeddings.png"}
    for name, path in pngs.items():
        assert f"report/{name}" in html
        with Image.open(path) as image:
            assert image.width >= 400 and image.height >= 300, name
            colours = image.convert("RGB").resize((64, 64)).getcolors(64 * 64)
            assert colours is None or len(colours) > 8, f"{name} looks blank"
