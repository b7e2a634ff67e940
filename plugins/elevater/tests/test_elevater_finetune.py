"""ELEVATER fine-tune mode and the toolkit's few-shot sampler, on the tiny layout from conftest."""
import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import vlkd_core
from vlkd_core import testing
from vlkd_core.evaluation import metrics as M
from vlkd_elevater.submission import read_submission


def finetune(root, **options):
    defaults = dict(root=str(root), mode="finetune", epochs=4, lrs=[1e-3, 1e-2], batch_size=16, progress=False)
    return vlkd_core.build_evaluator("elevater", **{**defaults, **options})


def _toolkit_subset(split, shots, seed):
    """What vision-datasets' sampler draws from the split's own manifest, as positions."""
    from vision_datasets.common import SampleByFewShotConfig, SampleFewShot
    images = split.vd.dataset_manifest.images
    sampled = SampleFewShot(SampleByFewShotConfig(random_seed=seed, n_shots=shots)).sample(split.vd.dataset_manifest)
    position = {img.img_path: i for i, img in enumerate(images)}
    return np.sort([position[img.img_path] for img in sampled.images])


def test_few_shot_subsets_are_the_toolkit_samplers(root):
    from vlkd_elevater.probe import few_shot_subset
    train = vlkd_core.build_dataset("elevater", root=str(root), dataset="mnist", split="train")
    subsets = {seed: few_shot_subset(train.targets, 3, seed, train.num_classes) for seed in (0, 1)}
    for seed, idx in subsets.items():
        assert np.array_equal(idx, _toolkit_subset(train, 3, seed))
        assert np.bincount(train.targets[idx], minlength=10).tolist() == [3] * 10
    assert not np.array_equal(subsets[0], subsets[1])
    voc = vlkd_core.build_dataset("elevater", root=str(root), dataset="voc-2007-classification", split="train")
    idx = few_shot_subset(voc.targets, 2, 0, voc.num_classes)
    assert np.array_equal(idx, _toolkit_subset(voc, 2, 0)) and (voc.targets[idx].sum(0) >= 2).all()
    with pytest.raises(vlkd_core.errors.DataError, match="mnist/train cannot give 5 shots per class"):
        finetune(root, datasets=["mnist"], num_shots=5).evaluate(testing.toy_dual_encoder())  # 4 per class


@pytest.mark.slow
def test_few_shot_finetune_writes_the_official_submission(root, model, tmp_path):
    ev = finetune(root, num_shots=2, seeds=[0, 1], output_dir=str(tmp_path), model_name="toy-ft")
    metrics = testing.check_evaluator(ev, model)
    assert set(metrics) == {"elevater/mnist/accuracy", "elevater/voc-2007-classification/11point_mAP",
                            "elevater/average"}
    recs = read_submission(ev.artifacts["submission"])
    mn, voc = recs["mnist"], recs["voc-2007-classification"]
    assert (mn["model_name"], mn["n_shot"], mn["rnd_seeds"]) == ("toy-ft", 2, [0, 1])
    tower = sum(p.numel() for p in model.image_tower.parameters())
    assert mn["num_trainable_params"] == tower + 64 * 10 + 10 + 1  # tower + linear head + logit scale
    assert voc["num_trainable_params"] == tower + 64 * 20 + 20 + 1
    probs = np.array(mn["predictions"])
    assert probs.shape == (2, 20, 10) and np.allclose(probs.sum(-1), 1.0, atol=1e-4)
    per_seed = [np.mean(p.argmax(1) == np.arange(20) % 10) for p in probs]
    assert metrics["elevater/mnist/accuracy"] == pytest.approx(np.mean(per_seed), abs=1e-6)
    voc_probs = np.array(voc["predictions"])  # independent sigmoids, one per class
    assert voc_probs.shape == (2, 12, 20) and ((voc_probs >= 0) & (voc_probs <= 1)).all()
    assert not np.allclose(voc_probs.sum(-1), 1.0)
    voc_targets = vlkd_core.build_dataset("elevater", root=str(root), dataset="voc-2007-classification",
                                          split="test").targets
    assert metrics["elevater/voc-2007-classification/11point_mAP"] == pytest.approx(
        np.mean([M.mean_average_precision_11pt(p, voc_targets) for p in voc_probs]), abs=1e-4)
    for sel in ev.artifacts["scores"]["mnist"]["selection"]:  # lr picked on 20 shots carved 16 / 4
        assert (sel["n_train"], sel["n_val"]) == (16, 4)
        assert sel["lr"] == max(sel["val_scores"], key=sel["val_scores"].get)


@pytest.mark.slow
def test_finetune_never_touches_the_callers_model(root, tmp_path):
    model = testing.toy_dual_encoder(seed=3)
    model.image_tower.requires_grad_(False)  # a tower locked in training is still fine-tuned in the copy
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ev = finetune(root, datasets=["mnist"], lrs=[1e-2])
    ev.evaluate(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in model.image_tower.parameters())
    assert ev.artifacts["records"][0]["num_trainable_params"] > sum(p.numel() for p in model.image_tower.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("head_init", ["text", "random"])
def test_full_finetune_learns_what_zero_shot_cannot(root, model, head_init):
    zero_shot = vlkd_core.build_evaluator("elevater", root=str(root), datasets=["mnist"], progress=False)
    zs = zero_shot.evaluate(model)["elevater/mnist/accuracy"]
    ev = finetune(root, datasets=["mnist"], head_init=head_init, epochs=8)
    acc = ev.evaluate(model)["elevater/mnist/accuracy"]
    assert ev.artifacts["records"][0]["n_shot"] == -1
    assert acc > 0.6 and acc > zs + 0.2, (acc, zs)  # chance 0.1; each digit has its own colour


def test_text_head_starts_from_the_zero_shot_classifier(root, model):
    from vlkd_elevater.evaluator import zeroshot_classifier
    from vlkd_elevater.finetune import FinetuneClassifier, predict
    test = vlkd_core.build_dataset("elevater", root=str(root), dataset="mnist", split="test")
    weights = zeroshot_classifier(model, test.prompt_classnames, test.templates)
    clf = FinetuneClassifier(model.image_tower, model.image_head, 64, 10, weights).eval()
    before_training = predict(clf, test, np.arange(20), multilabel=False)
    feats = model.encode_images([test[i]["image"] for i in range(20)])
    zero_shot = torch.softmax(feats @ weights.T / 0.07, 1).numpy()
    assert np.allclose(before_training, zero_shot, atol=1e-5)


@pytest.mark.slow
def test_learning_rate_is_chosen_on_training_shots_only(root, model, tmp_path):
    # the same images with the test labels scrambled: the choice must not move
    scrambled = tmp_path / "scrambled"
    shutil.copytree(root / "mnist", scrambled / "mnist")
    lines = (scrambled / "mnist" / "test.txt").read_text().splitlines()
    (scrambled / "mnist" / "test.txt").write_text(
        "\n".join(f"{line.rsplit(' ', 1)[0]} {(i * 3 + 1) % 10}" for i, line in enumerate(lines)) + "\n")
    runs = {}
    for name, where in (("original", root), ("scrambled", scrambled)):
        ev = finetune(where, datasets=["mnist"], lrs=[1e-7, 1e-2], head_init="random", seeds=[0])
        runs[name] = (ev.evaluate(model)["elevater/mnist/accuracy"], ev.artifacts["scores"]["mnist"]["selection"])
    (acc, sel), (acc_scrambled, sel_scrambled) = runs["original"], runs["scrambled"]
    assert sel == sel_scrambled and sel[0]["lr"] == 1e-2  # a rate of 1e-7 cannot learn in 4 epochs
    assert sel[0]["val_scores"][1e-2] > sel[0]["val_scores"][1e-7]
    assert (sel[0]["n_train"], sel[0]["n_val"]) == (32, 8)
    assert acc > 0.6 and acc_scrambled < acc - 0.3


@pytest.mark.slow
def test_cli_eval_runs_finetune_from_specs(root, tmp_path):
    from vlkd_cli.app import app
    spec = (f"elevater:root={root},datasets=mnist,mode=finetune,lrs=[0.001,0.01],epochs=3,num_shots=2,"
            f"seeds=[0,1],output_dir={tmp_path / 'sub'}")
    result = CliRunner().invoke(app, ["eval", "--image", "toy:tiny", "--text", "toy:tiny", "--eval", spec,
                                      "--output", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    metrics = json.loads((tmp_path / "eval.json").read_text())["metrics"]
    assert 0.0 <= metrics["elevater/mnist/accuracy"] <= 1.0
    rec = read_submission(tmp_path / "sub" / "all_predictions.zip")["mnist"]
    assert rec["rnd_seeds"] == [0, 1] and np.array(rec["predictions"]).shape == (2, 20, 10)


def test_finetune_needs_an_image_tower(root):
    class FeaturesOnly:  # enough for zero-shot and the linear probe, not for fine-tuning
        def encode_images(self, images):
            return torch.ones(len(images), 4)

        def encode_texts(self, texts):
            return torch.ones(len(texts), 4)

    with pytest.raises(vlkd_core.errors.UsageError, match="needs a vlkd DualEncoder.*FeaturesOnly"):
        finetune(root, datasets=["mnist"]).evaluate(FeaturesOnly())
