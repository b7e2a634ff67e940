"""Teacher feature stores: `vlkd features extract` and `vlkd train --teacher-features`.

- 1 and 2 processes write the same bytes (fp32), image and text side;
- a SIGKILLed extraction (the dataset kills its own process at a chosen sample, so no timer
  races) run again finishes with the files of an uninterrupted one, skipping finished shards and
  redoing a damaged one;
- training from the store gives the weights of training with the live locked teacher (one whose
  features do not depend on batch neighbours: features_helpers.build_rowwise), bit for
  bit, and so does a store run SIGKILLed mid-step and resumed;
- a store that does not fit the run stops before training with one line naming it and the key.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import features_helpers
import vlkd_core
from fault_helpers import KILLED, config, fault_plugin_registered, run_forked, wait  # noqa: F401
from features_helpers import KILL_AT, assert_two_processes_write_what_one_does, folder_bytes, toy_weights, write_shards
from train_helpers import run_cli
from vlkd_core.datasets.keys import caption_entry
from vlkd_core.errors import UsageError, VlkdError
from vlkd_core.features import ExtractConfig, FeatureStore, extract
from vlkd_core._host.plugins import get_plugin_manager
from vlkd_core.training.config import TowerConfig

pytestmark = pytest.mark.slow  # trains, starts processes or loads pretrained weights

SHAPES = {"size": 32, "length": 128}


@pytest.fixture(scope="module", autouse=True)
def plugins(fault_plugin_registered):  # noqa: F811
    get_plugin_manager().register_module(features_helpers, "features-test", distribution="vlkd-features-test")
    yield


def extract_forked(cfg: ExtractConfig, kill_at: int | None = None) -> int:
    """Extract in a forked child (killed at sample ``kill_at``); returns its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            if kill_at is not None:
                os.environ[KILL_AT] = str(kill_at)
            extract(cfg)
            code = 0
        except VlkdError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = exc.exit_code
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return wait(pid)


# -- extraction ------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["text", "image"])
def test_two_processes_write_the_same_bytes_as_one(tmp_path, side):
    pattern = write_shards(tmp_path / "data", shards=5, per_shard=24)
    args = ["features", "extract", "--data", "webdataset", "--data-option", f"path={pattern}",
            f"--{side}", "toy:tiny", f"--{side}-option", "image_size=16",
            "--batch-size", "8", "--no-progress"]
    assert_two_processes_write_what_one_does(args, tmp_path)
    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert (manifest["samples"], manifest["count"], len(manifest["shards"])) == (120, 120, 5)
    assert manifest["side"] == side and manifest["model"]["spec"] == "toy:tiny"


def test_sigkilled_extraction_run_again_writes_the_uninterrupted_files(tmp_path):
    cfg = dict(data="killing-shapes", data_options=SHAPES, tower=TowerConfig("text", "toy:tiny"), shard_size=32,
               batch_size=8, progress=False)
    assert extract_forked(ExtractConfig(out=str(tmp_path / "ref"), **cfg)) == 0
    out = tmp_path / "run"
    assert extract_forked(ExtractConfig(out=str(out), **cfg), kill_at=80) == KILLED  # inside shard 2
    assert sorted(p.name for p in out.glob("features-*")) == [
        "features-000000.json", "features-000000.safetensors",
        "features-000001.json", "features-000001.safetensors"]
    assert not (out / "manifest.json").exists()
    with pytest.raises(UsageError, match="run the same `vlkd features extract`"):
        FeatureStore(out)
    kept = (out / "features-000001.safetensors").stat().st_ino
    damaged = out / "features-000000.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:-4] + b"\0\0\0\0")  # a finished shard altered
    assert extract_forked(ExtractConfig(out=str(out), **cfg)) == 0
    assert folder_bytes(out) == folder_bytes(tmp_path / "ref")
    assert (out / "features-000001.safetensors").stat().st_ino == kept  # finished: skipped


def test_another_extraction_into_the_same_folder_is_refused(tmp_path):
    cfg = dict(data="shapes", data_options=SHAPES, tower=TowerConfig("text", "toy:tiny"), out=str(tmp_path / "s"), progress=False)
    assert extract_forked(ExtractConfig(**cfg)) == 0
    with pytest.raises(UsageError, match="another dtype"):
        extract(ExtractConfig(**{**cfg, "dtype": "fp16"}))


def test_fp16_store_holds_the_fp32_features_rounded(tmp_path):
    base = dict(data="shapes", data_options=SHAPES, tower=TowerConfig("text", "toy:tiny"), progress=False)
    extract(ExtractConfig(out=str(tmp_path / "32"), **base))
    extract(ExtractConfig(out=str(tmp_path / "16"), dtype="fp16", **base))
    a = load_file(tmp_path / "32" / "features-000000.safetensors")
    b = load_file(tmp_path / "16" / "features-000000.safetensors")
    assert a.keys() == b.keys() and all(b[k].dtype == torch.float16 for k in b)
    assert all(torch.equal(a[k].half(), b[k]) for k in a)


def test_every_caption_of_a_sample_has_its_vector(tmp_path):
    extract(ExtractConfig(data="two-caption-shapes", data_options={"size": 32, "length": 8},
                          tower=TowerConfig("text", "toy:tiny"), out=str(tmp_path / "s"), progress=False))
    torch.manual_seed(0)  # the extraction's seed: the same random toy tower
    tower = vlkd_core.build_backbone("toy:tiny", modality="text").eval()
    data = vlkd_core.build_dataset("two-caption-shapes", split="train", size=32, length=8)
    with safe_open(str(tmp_path / "s" / "features-000000.safetensors"), framework="pt") as f:
        assert len(list(f.keys())) == 16
        for i in range(8):
            for caption in data[i]["captions"]:
                with torch.no_grad():
                    alone = tower(tower.preprocess([caption]))[0]
                assert torch.allclose(f.get_tensor(caption_entry(f"s{i}", caption)), alone, atol=1e-6)


# -- training from a store -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Per (teacher side, data): run overrides naming a pretrained row-wise toy teacher, its
    store, and the live-teacher run."""
    root = tmp_path_factory.mktemp("teachers")
    done: dict[tuple[str, str], tuple[dict, Path, Path]] = {}

    def get(side: str, data: str = "shapes") -> tuple[dict, Path, Path]:
        if (side, data) not in done:
            weights = toy_weights(root / f"{side}.safetensors", side)
            student = "image" if side == "text" else "text"
            run = {side: "rowwise:tiny", f"{side}_pretrained": weights, student: "fault:plain", "teacher": side,
                   "data": data}
            store = root / f"store-{side}-{data}"
            if side == "image":
                run["image_options"] = {"image_size": 32}
            tower = TowerConfig(side, "rowwise:tiny", weights, run.get(f"{side}_options", {}))  # the run's teacher
            assert extract_forked(ExtractConfig(data=data, data_options=SHAPES, tower=tower, out=str(store),
                                                batch_size=24, progress=False)) == 0
            assert run_forked(config(root, f"live-{side}-{data}", **run)) == 0
            done[side, data] = run, store, root / f"live-{side}-{data}"
        return done[side, data]
    return get


def assert_student_weights_equal(live: Path, stored: Path, teacher: str) -> None:
    """Every tensor of the store run equals the live run's; the live run has exactly the
    teacher tower's tensors more (the store run never built it)."""
    a = load_file(live / "checkpoints" / "step-0000024" / "weights.safetensors")
    b = load_file(stored / "checkpoints" / "step-0000024" / "weights.safetensors")
    assert set(a) - set(b) == {k for k in a if k.startswith(f"model.{teacher}_tower.")} != set()
    assert set(b) <= set(a)
    differ = [k for k in b if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(b)} tensors differ, e.g. {differ[:3]}"


@pytest.mark.parametrize("side", ["text", "image"])
def test_training_from_the_store_gives_the_live_teachers_weights(tmp_path, teachers, side):
    run, store, live = teachers(side)
    assert run_forked(config(tmp_path, "stored", **run, teacher_features=str(store))) == 0
    assert_student_weights_equal(live, tmp_path / "stored", side)
    summary = json.loads((tmp_path / "stored" / "summary.json").read_text())
    assert summary["feature_cache"][side]["entries"] == 128


def test_each_caption_of_a_sample_is_joined_to_its_own_vector(tmp_path, teachers):
    """Two captions per sample, drawn per epoch: the store run still equals the live run."""
    run, store, live = teachers("text", "two-caption-shapes")
    assert json.loads((store / "manifest.json").read_text())["count"] == 2 * SHAPES["length"]
    assert run_forked(config(tmp_path, "stored", **run, teacher_features=str(store))) == 0
    assert_student_weights_equal(live, tmp_path / "stored", "text")


def test_a_store_run_evaluates_like_the_live_run_building_the_teacher_only_then(tmp_path, teachers):
    """`vlkd eval`'s rebuild of a store run: the teacher is a stand-in until an evaluator encodes
    text; then it is the real tower, and both runs embed alike."""
    from vlkd_core.features.tower import StoredTower
    from vlkd_core.training.restore import load_run
    run, store, live = teachers("text")
    assert run_forked(config(tmp_path, "stored", **run, teacher_features=str(store))) == 0
    stored, reference = load_run(tmp_path / "stored").model, load_run(live).model
    assert isinstance(stored.text_tower, StoredTower) and stored.text_tower._live is None
    captions = ["a red circle", "a small blue square left of a green star"]
    assert torch.equal(stored.encode_texts(captions), reference.encode_texts(captions))
    assert stored.text_tower._live is not None and not any(k.startswith("text_tower.") for k in stored.state_dict())
    images = [vlkd_core.build_dataset("shapes", split="test", size=32, length=4)[i]["image"] for i in range(4)]
    assert torch.equal(stored.encode_images(images), reference.encode_images(images))


def test_store_run_killed_mid_step_resumes_exactly(tmp_path, teachers):
    run, store, live = teachers("text")
    cfg = dict(**run, teacher_features=str(store))
    assert run_forked(config(tmp_path, "stored", **cfg), "step", 11) == KILLED
    assert run_forked(config(tmp_path, "stored", **cfg, resume="latest")) == 0
    assert_student_weights_equal(live, tmp_path / "stored", "text")


def _edit_manifest(store: Path, copy: Path, **changes) -> Path:
    import shutil
    shutil.copytree(store, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(changes)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


MISMATCHES = {
    "model spec": (lambda run, store, tmp: dict(run, text="toy:tiny"), "holds features of 'rowwise:tiny', but --text is 'toy:tiny'"),
    "weights": (lambda run, store, tmp: dict(run, text_pretrained=None), "--text-pretrained"),
    "missing keys": (lambda run, store, tmp: dict(run, data_options={"size": 32, "length": 160}), "no feature for key '128#"),
    "width": (lambda run, store, tmp: dict(run, image_head="linear", teacher_features=str(
        _edit_manifest(store, tmp / "w", width=32))), "has shape [64], but the store's width is 32"),
    "dtype": (lambda run, store, tmp: dict(run, teacher_features=str(_edit_manifest(store, tmp / "d", dtype="fp16"))),
              "is F32, but the store says fp16"),
    "incomplete": (lambda run, store, tmp: dict(run, teacher_features=str(tmp)), "no readable manifest.json"),
    "no teacher": (lambda run, store, tmp: dict(run, teacher="none", loss="infonce"), "pass --teacher text"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_a_store_that_does_not_fit_stops_before_training_in_one_line(tmp_path, teachers, case):
    from vlkd_core.training import train
    run, store, _ = teachers("text")
    change, words = MISMATCHES[case]
    cfg = config(tmp_path, "run", **change(dict(run, teacher_features=str(store)), store, tmp_path))
    with pytest.raises(UsageError) as info:
        train(cfg)
    message = str(info.value)
    assert words in message and "\n" not in message
    if case not in ("no teacher",):
        assert message.startswith(f"teacher feature store '{cfg.teacher_features}'")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_train_with_a_store_that_does_not_fit_is_one_line_exit_2(tmp_path, teachers):
    run, store, _ = teachers("text")
    result = run_cli(["train", "--image", "toy:tiny", "--text", "toy:tiny", "--teacher-features", str(store),
                      "--data-option", "size=32", "--data-option", "length=128", "--eval", "none",
                      "--output-dir", str(tmp_path), "--no-progress"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"teacher feature store '{store}'" in lines[0] and "'toy:tiny'" in lines[0]
