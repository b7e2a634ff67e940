"""--student-init-from-teacher --inherit-layers: the student is the teacher model's architecture
with the chosen blocks, starting from exactly the teacher's weights of those blocks (TinyCLIP's
manual weight inheritance); blocks whose removal breaks the tower are refused by name."""
from __future__ import annotations

import pytest
import torch

import vlkd_core
from vlkd_core.errors import UsageError
from vlkd_core.training import train
from vlkd_core.training.compose import compose
from vlkd_core.training.config import TrainConfig
from vlkd_core.training.inherit import inherit_tower, parse_inherit_layers


@pytest.fixture(scope="module")
def teacher_spec(tmp_path_factory):
    """Two tiny Hugging Face towers of one width (a ViT and a BERT, 2 blocks each) as a teacher."""
    from vlkd_hf.testing import tiny_bert, tiny_vit
    root = tmp_path_factory.mktemp("hf")
    return f"hf:{tiny_vit(root / 'vit')}+hf:{tiny_bert(root / 'bert')}"


def config(tmp_path, teacher_spec, **overrides):
    base = dict(teacher_model=teacher_spec, student_init_from_teacher=True, inherit_layers=["image:1 text:0"],
                teacher="none", loss="infonce,affinity-mimic", batch_size=8, max_steps=2, warmup_steps=1,
                eval=[], progress=False, data_options={"size": 32, "length": 32}, output_dir=str(tmp_path),
                name="student", workers=0)
    return TrainConfig(**{**base, **overrides})


def test_the_student_keeps_the_chosen_blocks_with_the_teachers_weights(tmp_path, teacher_spec):
    bundle = compose(config(tmp_path, teacher_spec))
    teacher = bundle.teacher_model.model
    student = bundle.model
    t_img, s_img = teacher.image_tower.model, student.image_tower.model
    assert len(s_img.encoder.layer) == 1 and len(t_img.encoder.layer) == 2
    for (name, a), (_, b) in zip(s_img.encoder.layer[0].state_dict().items(), t_img.encoder.layer[1].state_dict().items()):
        assert torch.equal(a, b), name  # student block 0 is teacher block 1
    assert torch.equal(s_img.embeddings.patch_embeddings.projection.weight,
                       t_img.embeddings.patch_embeddings.projection.weight)
    t_txt, s_txt = teacher.text_tower.model, student.text_tower.model
    assert len(s_txt.encoder.layer) == 1 and torch.equal(s_txt.encoder.layer[0].output.dense.weight,
                                                         t_txt.encoder.layer[0].output.dense.weight)
    assert all(p.requires_grad for p in student.parameters()) and not any(p.requires_grad for p in teacher.parameters())
    assert s_txt.encoder.layer[0].output.dense.weight.data_ptr() != t_txt.encoder.layer[0].output.dense.weight.data_ptr()


@pytest.mark.slow
def test_the_inherited_student_trains_and_loads(tmp_path, teacher_spec):
    train(config(tmp_path, teacher_spec))
    loaded = vlkd_core.load(tmp_path / "student")
    assert len(loaded.text_tower.model.encoder.layer) == 1
    assert loaded.encode_text(["a red circle"]).shape == (1, 32)


def test_bad_layer_choices_are_one_line_errors(tmp_path, teacher_spec):
    with pytest.raises(UsageError, match="has blocks 0-1, not 5"):
        compose(config(tmp_path, teacher_spec, inherit_layers=["text:0,5"]))
    with pytest.raises(UsageError, match="add --student-init-from-teacher"):
        compose(config(tmp_path, teacher_spec, student_init_from_teacher=False))
    with pytest.raises(UsageError, match="copies the towers of a --teacher-model"):
        compose(config(tmp_path, teacher_spec, teacher_model=None, loss="infonce"))
    with pytest.raises(UsageError, match="SIDE:i,j"):
        parse_inherit_layers(["audio:1"])


def test_a_block_that_changes_the_shape_cannot_go():
    tower = vlkd_core.build_backbone("timm:tf_efficientnet_lite0", image_size=64)
    names = tower.blocks()
    assert names[1] == "model.blocks.1.0" and names[2] == "model.blocks.1.1"
    kept = [i for i in range(len(names)) if i != 2]  # a stage's second block: same shape in and out
    assert len(inherit_tower(tower, "image", kept).blocks()) == len(names) - 1
    with pytest.raises(UsageError, match="does not run without the other blocks"):
        inherit_tower(tower, "image", [i for i in range(len(names)) if i != 1])  # changes 16 -> 24 channels


@pytest.mark.slow
def test_init_from_starts_a_new_stage_from_another_runs_towers(tmp_path):
    """LiT, then unlocked: the second run has its own locks and loss and starts from the first's
    towers and heads (not its loss state or optimizer)."""
    toy = dict(image="toy:tiny", text="toy:tiny", image_options={"image_size": 32}, batch_size=8, max_steps=3,
               warmup_steps=1, eval=[], progress=False, data_options={"size": 32, "length": 32},
               output_dir=str(tmp_path), workers=0)
    train(TrainConfig(**toy, name="lit", teacher="text", loss="infonce"))
    from vlkd_core.training.restore import load_run
    lit = load_run(tmp_path / "lit").model.state_dict()
    stage2 = TrainConfig(**{**toy, "max_steps": 1}, name="open", teacher="none", loss="infonce",
                         init_from=str(tmp_path / "lit"), lr=1e-12)
    train(stage2)
    opened = load_run(tmp_path / "open").model.state_dict()
    assert all(torch.allclose(lit[k], opened[k], atol=1e-6) for k in lit)  # one step at lr 1e-12 moves nothing
    other = TrainConfig(**toy, name="wrong", teacher="none", loss="infonce", image_head="mlp",
                        init_from=str(tmp_path / "lit"))
    with pytest.raises(UsageError, match="--init-from .*: its checkpoint has no 'image_head"):
        train(other)


def test_no_inherit_weights_is_the_same_architecture_freshly_initialised(tmp_path, teacher_spec):
    bundle = compose(config(tmp_path, teacher_spec, inherit_weights=False))
    t_txt, s_txt = bundle.teacher_model.model.text_tower.model, bundle.model.text_tower.model
    assert len(s_txt.encoder.layer) == 1
    assert not torch.equal(s_txt.encoder.layer[0].output.dense.weight, t_txt.encoder.layer[0].output.dense.weight)
    assert s_txt.encoder.layer[0].output.dense.weight.shape == t_txt.encoder.layer[0].output.dense.weight.shape
