"""--layer-decay depth of openclip towers (ViT, ModifiedResNet, text transformer): each named
parameter's lr factor is decay^(L - depth) with the depth written out here by hand."""
import json

import open_clip
import pytest

import vlkd_core as vlkd
from vlkd_core.testing import check_layer_depth
from vlkd_core.training.layer_decay import tower_depth


def factors(tower, decay=0.5):
    check_layer_depth(tower)  # the contract kit's check
    depth = tower_depth(tower, "image", "openclip:test", decay)
    return {n: depth(n, p) for n, p in tower.named_parameters()}


def test_vit_image_tower(tiny_clip):  # 2 blocks: stem 0, blocks 1-2, ln_post/proj 3
    got = factors(vlkd.build_backbone(f"openclip:{tiny_clip}", "image"))
    expected = {"visual.class_embedding": 0, "visual.positional_embedding": 0, "visual.conv1.weight": 0,
                "visual.ln_pre.weight": 0, "visual.transformer.resblocks.0.attn.in_proj_weight": 1,
                "visual.transformer.resblocks.1.mlp.c_fc.bias": 2, "visual.ln_post.weight": 3, "visual.proj": 3}
    for name, d in expected.items():
        assert got[name] == (d, pytest.approx(0.5 ** (3 - d))), name
    assert {d for d, _ in got.values()} == {0, 1, 2, 3}


def test_modified_resnet_image_tower(tiny_clip, tiny_cfg, tmp_path):
    cfg = dict(tiny_cfg, vision_cfg={"image_size": 32, "layers": [1, 2, 1, 1], "width": 8})
    (tmp_path / "vlkd-tiny-rn.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(str(tmp_path / "vlkd-tiny-rn.json"))
    got = factors(vlkd.build_backbone("openclip:vlkd-tiny-rn", "image"))
    # 5 bottlenecks: layer1.0 -> 1, layer2.0 -> 2, layer2.1 -> 3, layer3.0 -> 4, layer4.0 -> 5; top 6
    expected = {"visual.conv1.weight": 0, "visual.bn3.bias": 0, "visual.layer1.0.conv1.weight": 1,
                "visual.layer2.1.bn2.weight": 3, "visual.layer4.0.downsample.0.weight": 5,
                "visual.attnpool.c_proj.weight": 6}
    for name, d in expected.items():
        assert got[name] == (d, pytest.approx(0.5 ** (6 - d))), name


def test_text_tower(tiny_clip):
    tower = vlkd.build_backbone(f"openclip:{tiny_clip}", "text")
    check_layer_depth(tower)
    depth = tower_depth(tower, "text", "openclip:test", 0.5)
    got = {n: depth(n, p)[0] for n, p in tower.named_parameters()}
    assert got["text.token_embedding.weight"] == got["text.positional_embedding"] == 0
    assert got["text.transformer.resblocks.0.ln_1.weight"] == 1
    assert got["text.transformer.resblocks.1.attn.out_proj.weight"] == 2
    assert got["text.ln_final.weight"] == got["text.text_projection"] == 3 == tower.num_layers
