"""A reinforced feature store (MobileCLIP's dataset reinforcement): `vlkd features extract
--teacher-model RUN --augmentations K` stores the teacher's embeddings of K fixed training views
per image, the crops that made them and every caption's embedding; `vlkd train --teacher-features`
replays the recorded crops on the student and reads the teacher instead of running it.

- the store holds what the teacher gives for exactly the recorded crop (checked against
  `vlkd.load` of the teacher and an independent render of the crop);
- a run from the store ends with the weights of the same run with the live teacher on the same
  K views, bit for bit (a teacher whose features do not depend on batch neighbours,
  features_helpers.build_rowwise: the store's batches are not the run's), and so does one
  SIGKILLed mid-run and resumed;
- 1 and 2 processes write the same bytes; a killed extraction run again writes the same files;
- a store that does not fit the run (seed, preset, K, teacher) stops in one line before training.
"""
from __future__ import annotations

import json

import pytest
import torch

import fault_helpers as fh
import features_helpers
import vlkd_core
from features_helpers import assert_two_processes_write_what_one_does, folder_bytes
from fault_helpers import fault_plugin_registered  # noqa: F401 -- a fixture
from test_teacher_model import plugins, student, teacher_run  # noqa: F401 -- fixtures
from train_helpers import run_cli
from vlkd_core.datasets.keys import caption_entry
from vlkd_core.datasets.sampling import view_of, view_seed
from vlkd_core.datasets.shapes import ShapesDataset
from vlkd_core.errors import UsageError
from vlkd_core.features import ExtractConfig, FeatureStore, extract
from vlkd_core._model.images import RandomCropTransform, as_uint8, render
from vlkd_core.training import train
from vlkd_core.training.data import TrainView, Views
from vlkd_core._model.images import ImagePreprocess, ImageSpec
from vlkd_core._host.plugins import get_plugin_manager

SHAPES = {"size": 32, "length": 128}
K = 3


def extract_store(out, teacher_run, **overrides):
    cfg = dict(data="shapes", data_options=SHAPES, tower=None, out=str(out), teacher_model=str(teacher_run),
               augmentations=K, shard_size=48, batch_size=16, progress=False)
    extract(ExtractConfig(**{**cfg, **overrides}))
    return out


@pytest.fixture(scope="module")
def store(teacher_run, tmp_path_factory):
    return extract_store(tmp_path_factory.mktemp("store") / "store", teacher_run)


@pytest.fixture(scope="module")
def rowwise_teacher(plugins, tmp_path_factory):
    """A trained teacher run whose towers compute each row alone, and its reinforced store."""
    get_plugin_manager().register_module(features_helpers, "features-test", distribution="vlkd-features-test")
    out = tmp_path_factory.mktemp("rowwise")
    train(fh.config(out, "teacher", image="rowwise:tiny", text="rowwise:tiny", loss="infonce", teacher="none",
                    image_options={"image_size": 48}, epochs=1, eval=[], save_every=None))
    return out / "teacher", extract_store(out / "store", out / "teacher")


def test_fixed_views_are_k_draws_per_sample_and_each_epoch_shows_one():
    data = ShapesDataset(split="train", length=8, size=32)
    view = TrainView(data, ImagePreprocess(ImageSpec(24), "imagenet"), seed=3, train=True, views=Views(2))
    seen: dict[int, set[bytes]] = {i: set() for i in range(8)}
    for epoch in range(12):
        view.epoch = epoch
        for i in range(8):
            row = view[i]
            assert row["view"] == view_of(3, epoch, str(i), 2)
            seen[i].add(row["image"].numpy().tobytes())
    assert all(len(images) == 2 for images in seen.values())  # K=2 distinct views, no more


def test_the_store_holds_the_teachers_embedding_of_each_recorded_crop(store, teacher_run):
    s = FeatureStore(store)
    s.verify()
    manifest = s.manifest
    assert (manifest["kind"], manifest["augmentations"], manifest["samples"]) == ("reinforced", K, 128)
    loaded = vlkd_core.load(teacher_run)
    spec = loaded.model.image_tower.image_spec
    data = ShapesDataset(split="train", **SHAPES)
    crop = RandomCropTransform(spec, (0.9, 1.0), False)  # the openclip preset, drawn independently
    for index in (0, 77):
        item, key = data[index], str(index)
        x = as_uint8(item["image"])
        views = []
        for v in range(K):
            box, flip = crop.draw(x, torch.Generator().manual_seed(view_seed(0, key, v)))
            assert s.get_raw(f"{key}@{v}:crop").tolist() == [x.shape[-2], x.shape[-1], *box, int(flip)]
            views.append(render(x, box, flip, spec))
        with torch.no_grad():
            want = loaded.model.encode_image(torch.stack(views))
            text = loaded.model.encode_text(loaded.tokenizer([item["text"]]))
        got = s.get([f"{key}@{v}" for v in range(K)])
        assert torch.allclose(got, want, atol=1e-6)  # what the loss reads live (test_teacher_model)
        assert torch.allclose(s.get([caption_entry(key, item["text"])]), text, atol=1e-5)


def test_training_from_the_store_gives_the_live_teachers_weights_on_the_same_views(tmp_path, rowwise_teacher):
    teacher, store = rowwise_teacher
    live = student(tmp_path, "live", teacher, augmentations=K, eval=[])
    stored = student(tmp_path, "stored", teacher, teacher_features=str(store), eval=[])  # K from the store
    assert fh.run_forked(live) == 0
    assert fh.run_forked(stored) == 0
    fh.assert_same_weights(tmp_path / "live", tmp_path / "stored")
    config = json.loads((tmp_path / "stored" / "config.json").read_text())
    assert config["augmentations"] == K


@pytest.mark.slow
def test_sigkill_then_resume_from_a_reinforced_store_is_exact(tmp_path, rowwise_teacher):
    teacher_run, store = rowwise_teacher
    full = student(tmp_path, "full", teacher_run, teacher_features=str(store))
    assert fh.run_forked(full) == 0
    killed = student(tmp_path, "killed", teacher_run, teacher_features=str(store))
    assert fh.run_forked(killed, "step", 14) == fh.KILLED
    resumed = student(tmp_path, "killed", teacher_run, teacher_features=str(store), resume="latest")
    assert fh.run_forked(resumed) == 0
    fh.assert_same_weights(tmp_path / "full", tmp_path / "killed")


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_extract_the_same_bytes_and_a_lost_shard_is_redone(tmp_path):
    train(fh.config(tmp_path, "toy", image="toy:tiny", text="toy:tiny", loss="infonce", teacher="none",
                    max_steps=2, eval=[], save_every=None))  # builtin towers: the launched processes have them
    args = ["features", "extract", "--data", "shapes", "--data-option", "size=32", "--data-option", "length=96",
            "--teacher-model", str(tmp_path / "toy"), "--augmentations", "2", "--shard-size", "32",
            "--batch-size", "8", "--no-progress"]
    assert_two_processes_write_what_one_does(args, tmp_path)
    for name in ("features-000001.safetensors", "features-000001.json", "manifest.json"):
        (tmp_path / "two" / name).unlink()  # as a job killed before its second shard was done
    again = run_cli(args + ["--out", str(tmp_path / "two")])
    assert again.returncode == 0, again.stderr
    assert "(1 encoded now)" in again.stdout
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "two")


@pytest.mark.parametrize("change, message", [
    ({"seed": 1}, "views were drawn with --seed 0, but the run has --seed 1"),
    ({"augment": "imagenet"}, "--augment openclip, but the run has --augment imagenet"),
    ({"augmentations": 2}, "--augmentations 3, but the run has --augmentations 2"),
    ({"teacher_model": None}, "holds a teacher model's features: add --teacher-model"),
])
def test_a_store_that_does_not_fit_the_run_stops_before_training(tmp_path, store, teacher_run, change, message):
    cfg = student(tmp_path, "x", teacher_run, teacher_features=str(store), **change)
    if change.get("teacher_model", "") is None:
        cfg.loss = "infonce"
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        train(cfg)
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_a_store_of_another_teachers_weights_is_refused(tmp_path, store, teacher_run):
    import shutil
    cfg = fh.config(tmp_path, "t2", loss="infonce", teacher="none", image_options={"image_size": 48},
                    epochs=1, eval=[], save_every=None, seed=5)
    train(cfg)
    manifest = json.loads((store / "manifest.json").read_text())
    moved = tmp_path / "moved"
    shutil.copytree(store, moved)
    manifest["model"]["spec"] = str(tmp_path / "t2")
    (moved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UsageError, match="weights differ from the ones the store was extracted with"):
        train(student(tmp_path, "y", tmp_path / "t2", teacher_features=str(moved)))


def test_extraction_refuses_a_preset_without_random_views(tmp_path, teacher_run):
    with pytest.raises(UsageError, match="--augment none draws none"):
        extract_store(tmp_path / "s", teacher_run, augment="none")
    with pytest.raises(UsageError, match="add --augmentations K"):
        extract_store(tmp_path / "s", teacher_run, augmentations=None)
