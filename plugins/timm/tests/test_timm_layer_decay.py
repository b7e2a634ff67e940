"""--layer-decay on timm towers: the lr factor of every parameter equals timm's own
param_groups_layer_decay (its ``lr_scale``)."""
import pytest
from timm.optim import param_groups_layer_decay

import vlkd_core as vlkd
from vlkd_core.training.layer_decay import tower_depth


@pytest.mark.parametrize("model, options", [("vit_tiny_patch16_224", {"image_size": 32}), ("resnet18", {})])
def test_factors_equal_timms_own(model, options):
    tower = vlkd.build_backbone(f"timm:{model}", "image", **options)
    depth = tower_depth(tower, "image", f"timm:{model}", 0.75)
    ours = {id(p): depth(n, p)[1] for n, p in tower.named_parameters()}
    theirs = {id(p): g["lr_scale"] for g in param_groups_layer_decay(tower.model, layer_decay=0.75) for p in g["params"]}
    assert ours.keys() == theirs.keys()
    assert all(ours[k] == pytest.approx(theirs[k]) for k in ours)
    assert min(ours.values()) == pytest.approx(0.75 ** tower.num_layers)  # the stem
