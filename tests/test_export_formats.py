"""vlkd export: each format is loaded by its own library and gives the run's embeddings; a
format that does not fit, an occupied --out and a failed export are handled cleanly."""
import json

import numpy as np
import pytest
import torch
from export_runs import TEXTS, images, tiny_clip_dir, train_run
from vlkd_hf.testing import tiny_bert, tiny_sentence_transformer, tiny_vit
from train_helpers import invoke_cli
from typer.testing import CliRunner

import vlkd_core as vlkd
from vlkd_core.errors import UsageError
from vlkd_core.exports import Format, register_format


pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

def cli(args: list[str]):
    """The real `vlkd` application, in this process (no interpreter start-up per call)."""
    from vlkd_cli.app import app
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def toy_run(runs):
    return train_run(runs, "toy", image_head="mlp", text_head="mlp", head_options={"hidden_dim": 24})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    bert = tiny_bert(root / "bert")
    return {"clip": tiny_clip_dir(root / "clip"), "bert": bert, "st": tiny_sentence_transformer(root / "st", bert),
            "vit": tiny_vit(root / "vit")}


def test_onnx_graphs_give_the_run_features(toy_run, tmp_path):
    import onnxruntime
    out = vlkd.export(toy_run, "onnx", tmp_path / "onnx")
    model = vlkd.load(toy_run)
    pictures = images(3)  # another batch size than the export's sample
    image = onnxruntime.InferenceSession(str(out / "image.onnx"))
    pixels = torch.stack([model.preprocess(p) for p in pictures]).numpy()
    got = image.run(None, {"pixel_values": pixels})[0]
    assert np.allclose(got, model.encode_image(pictures, normalize=False).numpy(), atol=1e-4)
    text = onnxruntime.InferenceSession(str(out / "text.onnx"))
    info = json.loads((out / "vlkd_export.json").read_text())
    tokens = model.tokenizer(TEXTS)
    got = text.run(None, {info["text_inputs"][0]: tokens.numpy()})[0]
    assert np.allclose(got, model.encode_text(TEXTS, normalize=False).numpy(), atol=1e-4)
    assert info["image_input"]["mean"] == list(model.image_tower.image_spec.mean)


def test_open_clip_folder_loads_in_open_clip_with_the_head_folded_in(runs, models, tmp_path):
    import open_clip
    spec = f"openclip:local-dir:{models['clip']}"
    run = train_run(runs, "clip", image=spec, text=spec, image_head="linear", text_head="linear",
                    head_options={"bias": False})
    out = tmp_path / "clip"
    assert invoke_cli(["export", str(run), "--format", "open_clip", "--out", str(out)]).returncode == 0
    clip, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out}")
    model = vlkd.load(run)
    pictures = images(4)
    with torch.no_grad():
        image = clip.eval().encode_image(torch.stack([preprocess(p) for p in pictures]), normalize=True)
        text = clip.encode_text(tokenizer(TEXTS), normalize=True)
    assert torch.allclose(image, model.encode_image(pictures), atol=1e-5)
    assert torch.allclose(text, model.encode_text(TEXTS), atol=1e-5)


def test_open_clip_refuses_a_head_bias_it_cannot_fold(runs, models, tmp_path):
    run = train_run(runs, "clip-bias", image=f"openclip:local-dir:{models['clip']}",
                    text=f"openclip:local-dir:{models['clip']}", image_head="linear")
    result = cli(["export", str(run), "--format", "open_clip", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "image head's bias cannot be folded" in result.stderr and "bias=false" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


@pytest.mark.parametrize("tower", ["bert", "st"])
def test_sentence_transformers_folder_gives_the_text_features(runs, models, tower, tmp_path):
    from sentence_transformers import SentenceTransformer
    options = {"text_options": {"pooler": "cls"}} if tower == "bert" else {}  # BERT's tanh pooler
    run = train_run(runs, f"st-{tower}", text=f"hf:{models[tower]}", text_head="linear", **options)
    out = vlkd.export(run, "sentence-transformers", tmp_path / "st")
    st = SentenceTransformer(str(out), device="cpu")
    got = st.encode(TEXTS, convert_to_tensor=True, normalize_embeddings=True)
    assert torch.allclose(got, vlkd.load(run).encode_text(TEXTS), atol=1e-5)
    assert type(st[len(st) - 1]).__name__ == "Dense"  # the head


@pytest.fixture(scope="module")
def bert_run(runs, models):
    return train_run(runs, "hf-bert", text=f"hf:{models['bert']}", text_options={"pooler": "mean"}, text_head="linear")


def test_hf_folders_give_the_text_features(bert_run, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer
    run = bert_run
    out = vlkd.export(run, "hf", tmp_path / "hf")
    info = json.loads((out / "vlkd_export.json").read_text())["towers"]
    assert info["text"]["pooler"] == "mean" and not info["image"]["exported"]
    bert, tokenizer = AutoModel.from_pretrained(out / "text").eval(), AutoTokenizer.from_pretrained(out / "text")
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    head = load_file(str(out / "text_head" / "model.safetensors"))
    features = pooled @ head["layers.0.weight"].T + head["layers.0.bias"]
    expected = vlkd.load(run).encode_text(TEXTS)
    assert torch.allclose(torch.nn.functional.normalize(features, dim=-1), expected, atol=1e-5)


def test_onnx_text_graph_of_a_tokenizer_with_several_tensors(bert_run, tmp_path):
    import onnxruntime
    run = bert_run
    out = vlkd.export(run, "onnx", tmp_path / "onnx")
    names = json.loads((out / "vlkd_export.json").read_text())["text_inputs"]
    assert set(names) == {"input_ids", "attention_mask", "token_type_ids"}
    model = vlkd.load(run)
    tokens = model.tokenizer(TEXTS)  # padded to this batch's longest text, unlike the export's sample
    got = onnxruntime.InferenceSession(str(out / "text.onnx")).run(None, {n: tokens[n].numpy() for n in names})[0]
    assert np.allclose(got, model.encode_text(TEXTS, normalize=False).numpy(), atol=1e-4)


def test_hf_image_tower_at_another_size_and_its_onnx_graph(runs, models, tmp_path):
    """A ViT trained at 48 px (position embeddings interpolated): the hf folder says so, and both
    it and the onnx graph give the run's image features."""
    import onnxruntime
    from safetensors.torch import load_file
    from transformers import AutoModel
    run = train_run(runs, "hf-vit", image=f"hf:{models['vit']}", image_options={"image_size": 48})
    out = vlkd.export(run, "hf", tmp_path / "hf")
    info = json.loads((out / "vlkd_export.json").read_text())["towers"]["image"]
    assert info["image_size"] == 48 and info["interpolate_pos_encoding"]
    model = vlkd.load(run)
    pixels = torch.stack([model.preprocess(p) for p in images(3)])
    expected = model.encode_image(pixels, normalize=False)
    with torch.no_grad():
        vit = AutoModel.from_pretrained(out / "image").eval()
        pooled = vit(pixel_values=pixels, interpolate_pos_encoding=True).pooler_output
    head = load_file(str(out / "image_head" / "model.safetensors"))
    assert torch.allclose(pooled @ head["layers.0.weight"].T + head["layers.0.bias"], expected, atol=1e-5)
    graph = onnxruntime.InferenceSession(str(vlkd.export(run, "onnx", tmp_path / "onnx") / "image.onnx"))
    assert np.allclose(graph.run(None, {"pixel_values": pixels.numpy()})[0], expected.numpy(), atol=1e-4)


def test_a_format_that_does_not_fit_names_those_that_do(toy_run, tmp_path):
    for fmt in ("open_clip", "sentence-transformers", "hf"):
        result = cli(["export", str(toy_run), "--format", fmt, "--out", str(tmp_path / fmt)])
        assert result.exit_code == 2, result.stderr
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and f"--format {fmt}" in line
        assert line.endswith("formats that fit: safetensors, onnx") and "toy:tiny" in line
    result = cli(["export", str(toy_run), "--format", "onxx", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "did you mean onnx" in result.stderr
    assert not any(tmp_path.iterdir())


def test_an_occupied_out_needs_overwrite_and_is_replaced_whole(toy_run, tmp_path):
    """--overwrite replaces a previous export whole, and never a folder vlkd did not write."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        result = cli(["export", str(toy_run), "--format", "safetensors", "--out", str(out), *extra])
        assert result.exit_code == 2 and "not empty and not a vlkd export" in result.stderr, result.stderr
        assert (out / "mine.txt").read_text() == "keep me"
    (out / "mine.txt").unlink()
    vlkd.export(toy_run, "onnx", out)
    result = cli(["export", str(toy_run), "--format", "safetensors", "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.stderr and "previous export" in result.stderr
    vlkd.export(toy_run, "safetensors", out, overwrite=True)
    assert not (out / "image.onnx").exists() and json.loads((out / "vlkd_export.json").read_text())["format"] == "safetensors"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial or old folder left


def test_a_failed_export_leaves_nothing_that_looks_complete(toy_run, tmp_path):
    def write_then_fail(model, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    register_format(Format("failing-test-format", "fails half-way", lambda model: None, write_then_fail))
    with pytest.raises(RuntimeError, match="disk full"):
        vlkd.export(toy_run, "failing-test-format", tmp_path / "out")
    assert not any(tmp_path.iterdir())
    with pytest.raises(UsageError, match="already registered"):
        register_format(Format("failing-test-format", "another", lambda model: None, write_then_fail))
