"""vlkd train --grad-checkpointing: the engine flips each trainable tower's own switch (a run
trains with it), and a family without one is a one-line error naming the tower."""
import pytest

from vlkd_core.errors import UsageError
from vlkd_core.training import TrainConfig, train
from vlkd_core.training.compose import compose


def _cfg(tmp_path, **overrides) -> TrainConfig:
    base = dict(image="timm:test_vit", text="toy:tiny", image_options={"image_size": 32}, image_head="linear",
                loss="infonce", teacher="none", batch_size=8, max_steps=2, warmup_steps=1, eval=[],
                progress=False, grad_checkpointing=True, data_options={"size": 32, "length": 32},
                output_dir=str(tmp_path), name="run")
    return TrainConfig(**dict(base, **overrides))


@pytest.mark.slow
def test_a_run_trains_with_the_towers_own_checkpointing(tmp_path):
    bundle = compose(_cfg(tmp_path, lock_text=True))  # a locked tower needs no switch
    assert bundle.tower("image").model.grad_checkpointing  # timm's own flag
    assert not compose(_cfg(tmp_path, lock_text=True, grad_checkpointing=False)).tower("image").model.grad_checkpointing
    summary = train(_cfg(tmp_path, lock_text=True))
    assert summary["steps"] == 2


def test_a_tower_without_a_switch_is_named(tmp_path):
    with pytest.raises(UsageError, match="text tower 'toy:tiny' cannot recompute"):
        compose(_cfg(tmp_path))  # the toy text tower trains here and has no switch
