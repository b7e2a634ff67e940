"""--teacher-model: a trained dual encoder beside the student. Its features reach a loss that
names them (the same numbers as vlkd.load(run) gives for the same views and captions), the
teacher sees exactly the student's crops at its own resolution, it is never trained or saved,
and a killed run resumes to the uninterrupted run's weights bit for bit."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

import fault_helpers as fh
from fault_helpers import fault_plugin_registered  # noqa: F401 -- a fixture
import teacher_loss_plugin
import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core._model.images import ImageSpec, PairedViews, RandomCropTransform, as_uint8, render
from vlkd_core._host.plugins import get_plugin_manager
from vlkd_core.training import train
from vlkd_core.training.compose import compose


@pytest.fixture(scope="module")
def plugins(fault_plugin_registered):
    get_plugin_manager().register_module(teacher_loss_plugin, "teacher-mimic", distribution="vlkd-test-teacher")
    yield


@pytest.fixture(scope="module")
def teacher_run(plugins, tmp_path_factory):
    """A small trained CLIP-style teacher (both fault towers, InfoNCE) at 48 px."""
    out = tmp_path_factory.mktemp("teacher")
    cfg = fh.config(out, "teacher", loss="infonce", teacher="none", image_options={"image_size": 48},
                    epochs=1, eval=[], save_every=None)
    train(cfg)
    return out / "teacher"


def student(out, name, teacher_run, **overrides):
    return fh.config(out, name, **{"loss": "infonce,teacher-mimic", "teacher": "none",
                                   "teacher_model": str(teacher_run), **overrides})


@pytest.mark.slow
def test_a_loss_reads_the_teacher_models_features_of_the_students_views(tmp_path, teacher_run):
    teacher_loss_plugin.SEEN.clear()
    train(student(tmp_path, "s", teacher_run, max_steps=2, eval=[]))
    loaded = vlkd_core.load(teacher_run)
    seen = teacher_loss_plugin.SEEN[0]
    assert seen["views"].shape == (16, 3, 48, 48)  # the teacher's own 48 px, not the student's 32
    with torch.no_grad():
        assert torch.allclose(seen["teacher_image"], loaded.model.encode_image(seen["views"]), atol=1e-6)
        tokens = loaded.tokenizer(seen["texts"])
        assert torch.allclose(seen["teacher_text"], loaded.model.encode_text(tokens), atol=1e-5)
    scale = vlkd_core.training.restore.load_run(teacher_run).bundle.losses["infonce"].scale()
    assert torch.allclose(seen["scale"], scale.detach())
    _, weights = fh.final_weights(tmp_path / "s")
    assert not any(k.startswith("teacher") for k in weights)  # the teacher is not in the checkpoint


def test_paired_views_are_one_crop_at_each_towers_own_size():
    image = Image.effect_mandelbrot((80, 60), (-2, -1, 1, 1), 50).convert("RGB")
    small, large = ImageSpec(32), ImageSpec(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    pair = PairedViews(small, large, "imagenet")  # with flips: the flip is shared too
    for seed in range(6):
        s, t = pair(image, train=True, generator=torch.Generator().manual_seed(seed))
        alone = RandomCropTransform(small, (0.08, 1.0), True)(image, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(s, alone)  # the student's view is what it would be without a teacher
        crop = RandomCropTransform(small, (0.08, 1.0), True)
        box, flip = crop.draw(as_uint8(image), torch.Generator().manual_seed(seed))
        assert torch.equal(t, render(as_uint8(image), box, flip, large))


def test_a_loss_reading_a_teacher_model_needs_one(plugins, tmp_path):
    with pytest.raises(UsageError, match="loss 'teacher-mimic' distils from a teacher model.*--teacher-model"):
        compose(fh.config(tmp_path, "x", loss="infonce,teacher-mimic", teacher="none"))


@pytest.mark.slow
def test_sigkill_then_resume_with_a_teacher_model_is_exact(tmp_path, teacher_run):
    full = student(tmp_path, "full", teacher_run)
    assert fh.run_forked(full) == 0
    killed = student(tmp_path, "killed", teacher_run)
    assert fh.run_forked(killed, "step", 14) == fh.KILLED
    resumed = student(tmp_path, "killed", teacher_run, resume="latest")
    assert fh.run_forked(resumed) == 0
    fh.assert_same_weights(tmp_path / "full", tmp_path / "killed")


@pytest.mark.slow
@pytest.mark.parametrize("losses", ["infonce,affinity-mimic", "infonce:0.3,mobileclip-kd:0.7", "infonce,relation-distill",
                                    "infonce,feature-distill", "infonce,interactive-contrast", "siglip,affinity-mimic"])
def test_every_clip_distillation_objective_trains_with_a_teacher_model(tmp_path, teacher_run, losses):
    from train_helpers import read_jsonl
    cfg = student(tmp_path, "s", teacher_run, loss=losses, max_steps=4, log_every=1, eval=["fault"], save_every=None)
    summary = train(cfg)
    names = [part.split(":")[0] for part in losses.split(",")]
    logged = [r for r in read_jsonl(tmp_path / "s" / "metrics.jsonl") if r["type"] == "train"]
    assert len(logged) == 4 and all(torch.isfinite(torch.tensor(r[f"loss/{n}"])) for r in logged for n in names)
    assert summary["status"] == "finished" and summary["metrics"]
