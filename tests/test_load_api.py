"""vlkd.load(RUN): the same embeddings as the model `vlkd eval RUN` rebuilds, from a run, a
checkpoint or a safetensors export; cheap to import; clear errors."""
import json
import subprocess
import sys

import pytest
import torch
from export_runs import TEXTS, images, train_run
from train_helpers import invoke_cli

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.training.restore import load_run


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    # a linear head on each tower, so heads are part of what must match
    return train_run(tmp_path_factory.mktemp("runs"), "toy", image_head="linear", text_head="linear")


def test_load_gives_the_embeddings_vlkd_eval_uses(toy_run):
    model = vlkd.load(toy_run)
    reference = load_run(toy_run).model  # what `vlkd eval RUN` evaluates
    pictures = images(5)
    assert torch.equal(model.encode_image(pictures), reference.encode_images(pictures))
    assert torch.equal(model.encode_text(TEXTS), reference.encode_texts(TEXTS))
    raw = model.encode_image(pictures, normalize=False)
    assert torch.equal(raw, reference.encode_images(pictures, normalize=False))
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(5))  # normalize=False really is raw
    assert torch.allclose(model.encode_text(TEXTS).norm(dim=-1), torch.ones(len(TEXTS)))


def test_inputs_batches_and_parts(toy_run):
    model = vlkd.load(toy_run, device="cpu")
    pictures = images(5)
    batch = torch.stack([model.preprocess(p) for p in pictures])
    assert torch.allclose(model.encode_image(batch), model.encode_image(pictures), atol=1e-6)
    assert torch.allclose(model.encode_image(pictures, batch_size=2), model.encode_image(pictures), atol=1e-6)
    assert torch.allclose(model.encode_text(TEXTS, batch_size=3), model.encode_text(TEXTS), atol=1e-6)
    assert torch.equal(model.encode_text(TEXTS[0]), model.encode_text(TEXTS[:1]))
    assert torch.equal(model.tokenizer(TEXTS), model.text_tower.preprocess(TEXTS, train=False))
    assert model.device == torch.device("cpu") and model.encode_text(TEXTS).device == model.device
    assert model.config.image == "toy:tiny" and model.config.image_head == "linear"
    assert model.image_tower is model.model.image_tower and model.text_tower.modality == "text"
    assert not model.model.training


def test_a_checkpoint_folder_and_a_safetensors_export_load_the_same_model(toy_run, tmp_path):
    checkpoint = toy_run / "checkpoints" / (toy_run / "checkpoints" / "LATEST").read_text().strip()
    out = tmp_path / "export"
    result = invoke_cli(["export", str(toy_run), "--format", "safetensors", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "vlkd_export.json"]
    assert json.loads((out / "vlkd_export.json").read_text())["format"] == "safetensors"
    pictures = images(3)
    expected = vlkd.load(toy_run)
    for source in (checkpoint, out):
        model = vlkd.load(source)
        assert torch.equal(model.encode_image(pictures), expected.encode_image(pictures))
        assert torch.equal(model.encode_text(TEXTS), expected.encode_text(TEXTS))


def test_importing_vlkd_core_stays_cheap():
    code = "import sys, vlkd_core as v; assert callable(v.__getattr__); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert vlkd.load.__module__ == "vlkd_core._model.loader" and callable(vlkd.export)


def test_bad_sources_are_one_line_errors(tmp_path, toy_run):
    with pytest.raises(UsageError, match="does not exist"):
        vlkd.load(tmp_path / "nowhere")
    onnx_like = tmp_path / "other"
    onnx_like.mkdir()
    (onnx_like / "vlkd_export.json").write_text(json.dumps({"format": "onnx"}))
    with pytest.raises(UsageError, match="'onnx' export, which its own library loads"):
        vlkd.load(onnx_like)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no checkpoint found"):
        vlkd.load(tmp_path / "empty")
