"""--layer-decay depth of torchvision towers: ResNet bottlenecks, ViT encoder layers, and
``features`` stages, written out by hand; factor decay^(L - depth)."""

import vlkd_core as vlkd
from vlkd_core.testing import layer_depths


def depths(tower, decay=0.5):
    return layer_depths(tower, decay, name="torchvision:test")


def test_resnet18():  # stem 0, 8 basic blocks 1-8, nothing above (fc removed): L = 9
    got = depths(vlkd.build_backbone("torchvision:resnet18", "image", image_size=32))
    assert got["model.conv1.weight"] == got["model.bn1.bias"] == 0
    assert got["model.layer1.0.conv1.weight"] == 1 and got["model.layer1.1.bn2.weight"] == 2
    assert got["model.layer4.1.conv2.weight"] == 8
    assert max(got.values()) == 8 and vlkd.build_backbone("torchvision:resnet18", "image").num_layers == 9


def test_vit():
    got = depths(vlkd.build_backbone("torchvision:vit_b_32", "image", image_size=32))
    assert got["model.class_token"] == got["model.conv_proj.weight"] == got["model.encoder.pos_embedding"] == 0
    assert got["model.encoder.layers.encoder_layer_0.ln_1.weight"] == 1
    assert got["model.encoder.layers.encoder_layer_11.mlp.0.weight"] == 12
    assert got["model.encoder.ln.weight"] == 13


def test_features_model():
    got = depths(vlkd.build_backbone("torchvision:mobilenet_v3_small", "image", image_size=32))
    assert got["model.features.0.0.weight"] == 1 and got["model.features.12.0.weight"] == 13
    assert got["model.classifier.0.weight"] == 14  # the pre-logits layer kept above the stages
