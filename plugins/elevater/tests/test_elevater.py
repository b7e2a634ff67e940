"""End to end on tiny datasets written in the ELEVATER / vision-datasets layout by the tests
(fixtures in conftest.py); fine-tuning has its own file."""
import json
import zipfile

import numpy as np
import pytest
import torch

import vlkd_core
from vlkd_core import testing
from vlkd_core.errors import UnknownComponentError, UsageError
from vlkd_core.evaluation import metrics as M
from vlkd_elevater.submission import read_submission

def test_registered():
    vlkd_core.reset_plugin_manager()
    info = vlkd_core.get_plugin_manager().plugins["elevater"]
    assert info.status == "ok", info.error
    assert "elevater" in [c.name for c in vlkd_core.list_components("evaluators")]


def test_dataset_reads_the_layout(root):
    ds = vlkd_core.build_dataset("elevater", root=str(root), dataset="mnist", split="test")
    testing.check_dataset(ds)
    assert len(ds) == 20 and ds.targets.tolist() == [i % 10 for i in range(20)]
    assert ds[3]["text"] == 'a photo of the number: "3".'
    voc = vlkd_core.build_dataset("elevater", root=str(root), dataset="voc-2007-classification", split="train")
    labelmap = (root / "voc-2007-classification" / "labels.txt").read_text().split()
    assert voc.multilabel and voc.targets.shape == (24, 20) and voc.classnames == labelmap
    with pytest.raises(UnknownComponentError):
        vlkd_core.build_dataset("elevater", root=str(root), dataset="mnsit")
    with pytest.raises(UsageError, match="no 'val' split"):
        vlkd_core.build_dataset("elevater", root=str(root), dataset="mnist", split="val")


def test_zeroshot_submission_end_to_end(root, model, tmp_path):
    ev = vlkd_core.build_evaluator("elevater", root=str(root), output_dir=str(tmp_path), model_name="toy")
    metrics = testing.check_evaluator(ev, model)
    assert set(metrics) == {"elevater/mnist/accuracy", "elevater/voc-2007-classification/11point_mAP", "elevater/average"}
    with zipfile.ZipFile(ev.artifacts["submission"]) as z:
        assert z.namelist() == ["all_predictions.json"]
    recs = read_submission(ev.artifacts["submission"])
    assert set(recs) == {"mnist", "voc-2007-classification"}
    mn = recs["mnist"]
    assert set(mn) == {"model_name", "dataset_name", "num_trainable_params", "num_params", "num_visual_params",
                       "num_backbone_params", "n_shot", "rnd_seeds", "predictions"}
    assert (mn["model_name"], mn["n_shot"], mn["rnd_seeds"], mn["num_trainable_params"]) == ("toy", 0, [0], 0)
    assert mn["num_params"] == sum(p.numel() for p in model.parameters())
    assert mn["num_visual_params"] == sum(p.numel() for p in model.image_tower.parameters())
    probs = np.array(mn["predictions"])
    assert probs.shape == (1, 20, 10) and np.allclose(probs.sum(-1), 1.0, atol=1e-4)
    # the reported metric, recomputed independently from the submitted predictions
    assert metrics["elevater/mnist/accuracy"] == pytest.approx(np.mean(probs[0].argmax(1) == np.arange(20) % 10), abs=1e-6)
    voc_targets = vlkd_core.build_dataset("elevater", root=str(root), dataset="voc-2007-classification", split="test").targets
    voc_probs = np.array(recs["voc-2007-classification"]["predictions"])
    assert voc_probs.shape == (1, 12, 20)
    assert metrics["elevater/voc-2007-classification/11point_mAP"] == pytest.approx(
        M.mean_average_precision_11pt(voc_probs[0], voc_targets), abs=1e-4)
    assert (tmp_path / "predictions" / "mnist.json").is_file()


def test_zeroshot_uses_the_shipped_prompts(root, model):
    from vlkd_elevater.evaluator import zeroshot_classifier
    ev = vlkd_core.build_evaluator("elevater", root=str(root), datasets=["mnist"])
    ev.evaluate(model)
    ds = vlkd_core.build_dataset("elevater", root=str(root), dataset="mnist", split="test")
    w = M.zeroshot_weights(model.encode_texts([f'a photo of the number: "{d}".' for d in range(10)]).view(10, 1, -1))
    assert torch.allclose(zeroshot_classifier(model, ds.prompt_classnames, ds.templates), w, atol=1e-6)
    feats = model.encode_images([ds[i]["image"] for i in range(20)])
    expected = torch.softmax(100 * feats @ w.T, 1).numpy()
    assert np.allclose(np.array(ev.artifacts["records"][0]["predictions"][0]), expected, atol=2e-6)


@pytest.mark.slow
def test_few_shot_linear_probe(root, model, tmp_path):
    ev = vlkd_core.build_evaluator("elevater", root=str(root), mode="linear-probe", num_shots=2, seeds=[0, 1],
                                   Cs=[0.1, 10.0], max_iter=300, output_dir=str(tmp_path))
    metrics = testing.check_evaluator(ev, model)
    recs = read_submission(ev.artifacts["submission"])
    mn = recs["mnist"]
    assert mn["n_shot"] == 2 and mn["rnd_seeds"] == [0, 1]
    assert mn["num_trainable_params"] == (64 + 1) * 10
    probs = np.array(mn["predictions"])
    assert probs.shape == (2, 20, 10)
    per_seed = [np.mean(p.argmax(1) == np.arange(20) % 10) for p in probs]
    assert metrics["elevater/mnist/accuracy"] == pytest.approx(np.mean(per_seed), abs=1e-6)
    assert np.array(recs["voc-2007-classification"]["predictions"]).shape == (2, 12, 20)


@pytest.mark.slow
def test_full_linear_probe_learns_colour_coded_classes(root, model):
    ev = vlkd_core.build_evaluator("elevater", root=str(root), datasets=["mnist"], mode="linear-probe",
                                   Cs=[1.0, 100.0], max_iter=500)
    metrics = ev.evaluate(model)
    assert ev.artifacts["records"][0]["n_shot"] == -1
    assert metrics["elevater/mnist/accuracy"] > 0.5  # chance is 0.1; each class has its own colour


def test_dataset_json_registry(root, model, tmp_path):
    info = [{"name": "mnist", "version": 1, "type": "classification_multiclass", "root_folder": "mnist",
             "labelmap": "labels.txt", "num_classes": 10,
             "train": {"index_path": "train.txt", "files_for_local_usage": ["train.zip"]},
             "test": {"index_path": "test.txt", "files_for_local_usage": ["val.zip"]}}]
    path = tmp_path / "vision_datasets.json"
    path.write_text(json.dumps(info))
    ev = vlkd_core.build_evaluator("elevater", root=str(root), dataset_json=str(path))
    assert set(ev.evaluate(model)) == {"elevater/mnist/accuracy", "elevater/average"}


def test_in_memory_dataset_override(model):
    data = vlkd_core.build_dataset("shapes", split="test", size=16, length=30)
    metrics = testing.check_evaluator(vlkd_core.build_evaluator("elevater"), model, dataset=data)
    assert set(metrics) == {"elevater/custom/accuracy", "elevater/average"}
    probe = vlkd_core.build_evaluator("elevater", mode="linear-probe", Cs=[1.0], max_iter=200)
    testing.check_evaluator(probe, model, dataset=data)


def test_usage_errors(root):
    with pytest.raises(UsageError, match="mode must be one of"):
        vlkd_core.build_evaluator("elevater", root=str(root), mode="fine-tune")
    with pytest.raises(UsageError, match="num_shots"):
        vlkd_core.build_evaluator("elevater", root=str(root), num_shots=5)
    with pytest.raises(UsageError, match="head_init"):
        vlkd_core.build_evaluator("elevater", root=str(root), mode="finetune", head_init="zeros")
    with pytest.raises(UsageError, match="lrs"):
        vlkd_core.build_evaluator("elevater", root=str(root), mode="finetune", lrs=[1e-3, -1.0])
    with pytest.raises(UsageError, match="root"):
        vlkd_core.build_evaluator("elevater").evaluate(testing.toy_dual_encoder())
    with pytest.raises(UsageError, match="does not exist"):
        vlkd_core.build_evaluator("elevater", root=str(root / "nope")).evaluate(testing.toy_dual_encoder())


def test_dataset_metrics_match_independent_computations():
    from vlkd_elevater.metrics import dataset_score
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 80)
    p = rng.random((80, 5)) + 0.8 * np.eye(5)[y]
    assert dataset_score("accuracy", p, y) == pytest.approx(np.mean(p.argmax(1) == y))
    assert dataset_score("mean-per-class", p, y) == pytest.approx(M.mean_per_class_recall(p.argmax(1), y, 5))
    t = (rng.random((80, 5)) < 0.3).astype(int)
    t[0] = 1
    assert dataset_score("11point_mAP", p, t) == pytest.approx(M.mean_average_precision_11pt(p, t))
    from sklearn.metrics import roc_auc_score
    yb = rng.integers(0, 2, 50)
    pb = rng.random((50, 2))
    assert dataset_score("roc_auc", pb, yb) == pytest.approx(roc_auc_score(yb, pb[:, 1]))


def test_shipped_elevater_prompts_cover_the_20_datasets():
    from vlkd_elevater.catalog import ELEVATER_DATASETS, METRICS, shipped_prompts
    counts = {"caltech-101": 102, "cifar-10": 10, "cifar-100": 100, "country211": 211, "dtd": 47, "eurosat_clip": 10,
              "fer-2013": 7, "fgvc-aircraft-2013b-variants102": 100, "food-101": 101, "gtsrb": 43, "hateful-memes": 2,
              "kitti-distance": 4, "mnist": 10, "oxford-flower-102": 102, "oxford-iiit-pets": 37, "patch-camelyon": 2,
              "rendered-sst2": 2, "resisc45_clip": 45, "stanford-cars": 196, "voc-2007-classification": 20}
    assert set(ELEVATER_DATASETS) == set(counts) == set(METRICS)
    for name, n in counts.items():
        p = shipped_prompts(name)
        assert len(p["classnames"]) == n and all("{}" in t for t in p["templates"]), name
    assert shipped_prompts("fer-2013")["classnames"][3] == ["happy", "smiling"]


def test_export_a_vlkd_dataset_to_the_layout_and_read_it_back(tmp_path):
    from vlkd_elevater.layout import export_dataset, write_labelmap
    shapes = vlkd_core.build_dataset("shapes", split="test", size=16, length=12)
    folder = tmp_path / "shapes-set"
    write_labelmap(folder, shapes.classnames)
    assert export_dataset(shapes, folder, "test.txt", "images.zip", limit=10) == 10
    back = vlkd_core.build_dataset("elevater", root=str(tmp_path), dataset="shapes-set", split="test")
    assert len(back) == 10 and back.classnames == list(shapes.classnames)
    for i in (0, 9):
        assert back[i]["label"] == shapes[i]["label"]
        assert np.array_equal(np.asarray(back[i]["image"]), np.asarray(shapes[i]["image"].convert("RGB")))
